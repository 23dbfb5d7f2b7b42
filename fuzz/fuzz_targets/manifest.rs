//! Fuzzes the integrity manifest parser.
//!
//! It must reject bad input with an error, never a panic. The signed bytes of an accepted
//! manifest must be the encoding of its parsed content. Because the parser accepts only
//! canonical files, encoding an accepted manifest again with its signature must give back
//! the input. That holds only for the one accepted algorithm name: the parser leaves other
//! names for the launch check to reject, and the encoder always writes the accepted one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midcore_verifier::crypto::SIGNATURE_ALGORITHM;
use midcore_verifier::manifest::parse_manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(unverified) = parse_manifest(data) else {
        return;
    };
    assert_eq!(unverified.manifest.signed_bytes(), unverified.signed_bytes);
    if unverified.signature_algorithm == SIGNATURE_ALGORITHM {
        assert_eq!(
            unverified.manifest.encode_signed(&unverified.signature),
            data
        );
    }
});
