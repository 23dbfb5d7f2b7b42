//! Measures RSA-PSS-SHA256 (salt 32) verifications per second on one core with
//! aws-lc-rs, ring and the RustCrypto rsa crate, over the same key, message and
//! signature, for 2048- and 3072-bit keys.

use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;

const MESSAGE: &[u8] = b"id-0001|llm.completion|tenant-42|1250|1767225600000";
const RUN_FOR: Duration = Duration::from_secs(2);

fn rate(mut verify: impl FnMut() -> bool) -> f64 {
    assert!(verify(), "signature must verify before timing");
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < RUN_FOR {
        for _ in 0..100 {
            assert!(verify());
        }
        count += 100;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    println!("bits\tlibrary\tverifications_per_second");
    for (bits, size) in [(2048, KeySize::Rsa2048), (3072, KeySize::Rsa3072)] {
        let pair = KeyPair::generate(size).expect("generate key");
        let spki = pair.public_key().as_der().expect("SPKI").as_ref().to_vec();
        let pkcs1 = pair.public_key().as_ref().to_vec();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign(&RSA_PSS_SHA256, &rng, MESSAGE, &mut signature).expect("sign");

        let aws = aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256, &spki)
            .expect("aws-lc key");
        let aws_rate = rate(|| aws.verify_sig(MESSAGE, &signature).is_ok());
        println!("{bits}\taws-lc-rs\t{aws_rate:.0}");

        let ring_key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PSS_2048_8192_SHA256, &pkcs1);
        let ring_rate = rate(|| ring_key.verify(MESSAGE, &signature).is_ok());
        println!("{bits}\tring\t{ring_rate:.0}");

        let rsa_key = rsa::RsaPublicKey::from_public_key_der(&spki).expect("rsa key");
        let verifying = rsa::pss::VerifyingKey::<sha2::Sha256>::new(rsa_key);
        let rsa_signature = rsa::pss::Signature::try_from(signature.as_slice()).expect("signature");
        let rsa_rate = rate(|| verifying.verify(MESSAGE, &rsa_signature).is_ok());
        println!("{bits}\trsa\t{rsa_rate:.0}");
    }
}
