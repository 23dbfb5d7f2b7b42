//! Release signer for Midcore bundles.
//!
//! Builds the integrity manifest and WASM sidecars, signs them through one
//! [`backend::SigningBackend`] (a local PEM key for development, Azure Key Vault
//! for releases), and checks every signature with the verifier's own code
//! before anything is written.
#![forbid(unsafe_code)]

#[cfg(feature = "azure")]
pub mod azure;
pub mod backend;
pub mod keyref;
pub mod local;
pub mod sign;
