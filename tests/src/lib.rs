//! End-to-end test support for Midcore, and the loopback Azure emulator.
#![forbid(unsafe_code)]

pub mod emulator;
