//! End-to-end test support for Midcore, and the loopback Azure emulator.
#![forbid(unsafe_code)]

pub mod emulator;

/// Returns the folder of Electron's ASAR test archives: `MIDCORE_FIXTURES_DIR`
/// when set (`scripts/test.sh` sets it), else the first
/// `shared/fixtures/electron-asar` found beside this repository or a folder
/// above it.
///
/// # Panics
///
/// Panics with the variable's name when neither holds the fixtures.
pub fn asar_fixtures() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("MIDCORE_FIXTURES_DIR") {
        return std::path::PathBuf::from(dir);
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|folder| folder.join("shared/fixtures/electron-asar"))
        .find(|candidate| candidate.join("expected/packthis.asar").exists())
        .expect("ASAR fixtures not found: set MIDCORE_FIXTURES_DIR to the electron-asar fixtures folder")
}
