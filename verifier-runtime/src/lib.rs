//! Launch-time integrity verification for Midcore bundles.
//!
//! This crate owns every format the toolchain writes: the strict ASAR reader,
//! the signed integrity manifest, WASM sidecars, key ids and the trust set.
//! Its default build has no async runtime, no WebAssembly engine and no cloud SDK.
#![deny(unsafe_code)]

pub mod asar;
pub mod bundle;
pub mod ci;
#[cfg(feature = "cli")]
pub mod cli;
pub mod crypto;
pub mod json;
pub mod launch;
pub mod ledger;
pub mod manifest;
pub mod receipt;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod sidecar;
pub mod tamper;
