//! Signing certificates and signature verification, all in RustCrypto crates: `x509-cert`
//! reads the certificate, `rsa` verifies RSA-PSS, `p384`/`p521` ECDSA. The bytes' digest is
//! computed by the ingest lanes as they stream past; this module only checks a finished digest
//! against the signature, as Glance (through `cursive`) does.

use rsa::pkcs8::DecodePublicKey;
use rsa::signature::hazmat::PrehashVerifier;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use crate::domain::signature::{HashMethod, KeyKind, SignatureClaim};

/// The smallest RSA key accepted: shorter keys are factorable at a cost within reach.
pub const MIN_RSA_BITS: usize = 2048;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const SECP384R1: &str = "1.3.132.0.34";
const SECP521R1: &str = "1.3.132.0.35";

/// Curves and algorithms a certificate may hold that the console does not verify with, named.
const NAMED_UNSUPPORTED: [(&str, &str); 6] = [
    ("1.2.840.10045.3.1.7", "EC P-256"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS-only RSA"),
    ("1.2.840.10040.4.1", "DSA"),
    ("1.3.132.0.39", "EC sect571r1"),
];

/// A certificate's public key, ready to verify with.
#[derive(Clone, Debug)]
pub enum PublicKey {
    Rsa(rsa::PublicKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

impl PublicKey {
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa(_) => KeyKind::Rsa,
            PublicKey::P384(_) => KeyKind::EcP384,
            PublicKey::P521(_) => KeyKind::EcP521,
        }
    }

    pub fn bits(&self) -> u32 {
        match self {
            PublicKey::Rsa(key) => (key.size() * 8) as u32,
            PublicKey::P384(_) => 384,
            PublicKey::P521(_) => 521,
        }
    }
}

/// A signing certificate, read and checked.
#[derive(Clone, Debug)]
pub struct SigningCertificate {
    /// The certificate's DER, as stored.
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    pub fingerprint_sha256: String,
    pub key: PublicKey,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

impl SigningCertificate {
    /// Reads one PEM certificate as uploaded. The error is the sentence the uploader reads.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let blocks: Vec<&str> = text
            .match_indices("-----BEGIN ")
            .map(|(at, _)| &text[at..])
            .collect();
        let Some(first) = blocks.first() else {
            return Err(
                "The file is not PEM: a certificate file begins with -----BEGIN CERTIFICATE-----."
                    .into(),
            );
        };
        if blocks.iter().any(|b| {
            b.starts_with("-----BEGIN ")
                && b[11..]
                    .split("-----")
                    .next()
                    .is_some_and(|label| label.contains("PRIVATE KEY"))
        }) {
            return Err("The file holds a private key. Upload only the certificate, and keep the private key to yourself.".into());
        }
        let certificates = blocks
            .iter()
            .filter(|b| b.starts_with("-----BEGIN CERTIFICATE-----"))
            .count();
        if certificates > 1 {
            return Err(format!(
                "The file holds {certificates} certificates: upload the signing certificate alone."
            ));
        }
        let end = first
            .find("-----END ")
            .and_then(|at| first[at + 9..].find("-----").map(|e| at + 9 + e + 5))
            .ok_or("The file is not PEM: its block has no -----END line.")?;
        let (label, der) = x509_cert::der::pem::decode_vec(&first.as_bytes()[..end])
            .map_err(|_| "The file is not PEM: its block is not valid base64 between the BEGIN and END lines.".to_owned())?;
        if label != "CERTIFICATE" {
            return Err(format!(
                "The file holds a {label}, not a CERTIFICATE: upload an X.509 certificate."
            ));
        }
        Self::from_der(der)
    }

    pub fn from_der(der: Vec<u8>) -> Result<Self, String> {
        let certificate = Certificate::from_der(&der).map_err(|e| {
            format!("The file is not an X.509 certificate: its contents could not be read ({e}).")
        })?;
        let tbs = certificate.tbs_certificate();
        let spki = tbs.subject_public_key_info();
        let spki_der = spki
            .to_der()
            .map_err(|e| format!("The certificate's public key could not be read ({e})."))?;
        let algorithm = spki.algorithm.oid.to_string();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<x509_cert::der::oid::ObjectIdentifier>().ok())
            .map(|oid| oid.to_string());
        let unreadable = |e: &dyn std::fmt::Display| {
            format!("The certificate's public key could not be read ({e}).")
        };
        let key = match (algorithm.as_str(), curve.as_deref()) {
            (RSA_ENCRYPTION, _) => {
                let key =
                    rsa::PublicKey::from_public_key_der(&spki_der).map_err(|e| unreadable(&e))?;
                if key.size() * 8 < MIN_RSA_BITS {
                    return Err(format!(
                        "The certificate's RSA key has {} bits; keys shorter than {MIN_RSA_BITS} bits are not accepted.",
                        key.size() * 8
                    ));
                }
                PublicKey::Rsa(key)
            }
            (EC_PUBLIC_KEY, Some(SECP384R1)) => PublicKey::P384(
                p384::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                    .map_err(|e| unreadable(&e))?,
            ),
            (EC_PUBLIC_KEY, Some(SECP521R1)) => PublicKey::P521(
                p521::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                    .map_err(|e| unreadable(&e))?,
            ),
            (algorithm, curve) => {
                let oid = curve.unwrap_or(algorithm);
                let named = NAMED_UNSUPPORTED
                    .iter()
                    .find(|(known, _)| *known == oid)
                    .map_or_else(
                        || format!("a key of type {oid}"),
                        |(_, name)| format!("an {name} key"),
                    );
                return Err(format!(
                    "The certificate holds {named}; signatures are verified with RSA (RSA-PSS), EC P-384 or EC P-521 keys."
                ));
            }
        };
        let validity = tbs.validity();
        let millis = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
        };
        Ok(Self {
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            fingerprint_sha256: fingerprint(&der),
            key,
            not_before_ms: millis(validity.not_before),
            not_after_ms: millis(validity.not_after),
            der,
        })
    }

    /// Whether the certificate may be used at `now_ms`; the error says why not.
    pub fn check_validity(&self, now_ms: i64) -> Result<(), String> {
        let at = crate::domain::units::format_timestamp;
        if now_ms > self.not_after_ms {
            return Err(format!(
                "The signing certificate \"{}\" expired on {}.",
                self.subject,
                at(self.not_after_ms)
            ));
        }
        if now_ms < self.not_before_ms {
            return Err(format!(
                "The signing certificate \"{}\" is not valid until {}.",
                self.subject,
                at(self.not_before_ms)
            ));
        }
        Ok(())
    }
}

/// `AB:CD:…`, SHA-256 over the DER, as `openssl x509 -fingerprint -sha256` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The digest of `data` with `method`, for tests and the re-reading of stored bytes.
pub fn digest_of(method: HashMethod, data: &[u8]) -> Vec<u8> {
    match method {
        HashMethod::Sha224 => Sha224::digest(data).to_vec(),
        HashMethod::Sha256 => Sha256::digest(data).to_vec(),
        HashMethod::Sha384 => Sha384::digest(data).to_vec(),
        HashMethod::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// Checks the claim's signature over the bytes whose `digest` (made with the claim's hash
/// method) is given, with the certificate's key, valid at `now_ms`. The error is the reason
/// the image is refused.
pub fn verify(
    certificate: &SigningCertificate,
    claim: &SignatureClaim,
    digest: &[u8],
    now_ms: i64,
) -> Result<(), String> {
    certificate.check_validity(now_ms)?;
    let kind = certificate.key.kind();
    if kind != claim.key_type.key_kind() {
        return Err(format!(
            "img_signature_key_type is {}, but the certificate \"{}\" holds an {} key (sign with {}).",
            claim.key_type.as_str(),
            certificate.subject,
            kind.label(certificate.key.bits()),
            kind.key_type().as_str()
        ));
    }
    let refused = || {
        format!(
            "The signature does not verify: the bytes received are not the ones signed with the key of \"{}\" using {} with {} (a changed file, another key, or another hash method).",
            certificate.subject,
            claim.key_type.label(),
            claim.hash_method.as_str()
        )
    };
    let signature = claim.signature.bytes();
    let verified = match &certificate.key {
        PublicKey::Rsa(key) => {
            let signature = rsa::pss::Signature::try_from(signature).map_err(|_| refused())?;
            let key = key.clone();
            match claim.hash_method {
                HashMethod::Sha224 => rsa::pss::VerifyingKey::<Sha224>::new_with_auto_salt_len(key)
                    .verify_prehash(digest, &signature),
                HashMethod::Sha256 => rsa::pss::VerifyingKey::<Sha256>::new_with_auto_salt_len(key)
                    .verify_prehash(digest, &signature),
                HashMethod::Sha384 => rsa::pss::VerifyingKey::<Sha384>::new_with_auto_salt_len(key)
                    .verify_prehash(digest, &signature),
                HashMethod::Sha512 => rsa::pss::VerifyingKey::<Sha512>::new_with_auto_salt_len(key)
                    .verify_prehash(digest, &signature),
            }
        }
        PublicKey::P384(key) => p384::ecdsa::DerSignature::from_bytes(signature)
            .map_err(|_| refused())
            .map(|s| key.verify_prehash(digest, &s))?,
        PublicKey::P521(key) => p521::ecdsa::DerSignature::from_bytes(signature)
            .map_err(|_| refused())
            .map(|s| key.verify_prehash(digest, &s))?,
    };
    verified.map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::signature::{CertificateRef, KeyType, SignatureValue};

    const NOW_MS: i64 = 1_797_000_000_000; // 2026-12-12

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/service/signatures/testdata")
                .join(name),
        )
        .unwrap()
    }

    fn image() -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/service/signatures/testdata/image.bin"),
        )
        .unwrap()
    }

    fn claim(key: &str, method: HashMethod, key_type: KeyType) -> SignatureClaim {
        let hash = method.as_str().replace('-', "").to_lowercase();
        SignatureClaim {
            signature: SignatureValue::parse(&fixture(&format!("{key}-{hash}.sig.b64"))).unwrap(),
            hash_method: method,
            key_type,
            certificate: CertificateRef::parse("0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab").unwrap(),
        }
    }

    /// Signatures made once with `openssl dgst -<hash> -sign key.pem [-sigopt
    /// rsa_padding_mode:pss] -out sig image.bin`, then `base64 -w 0`.
    #[test]
    fn openssl_signatures_verify_for_every_key_type_and_hash() {
        let data = image();
        for (key, key_type) in [
            ("rsa", KeyType::RsaPss),
            ("p384", KeyType::EccSecp384r1),
            ("p521", KeyType::EccSecp521r1),
        ] {
            let certificate =
                SigningCertificate::from_pem(&fixture(&format!("{key}.pem"))).unwrap();
            assert_eq!(certificate.key.kind(), key_type.key_kind());
            for method in HashMethod::ALL {
                let claim = claim(key, method, key_type);
                verify(&certificate, &claim, &digest_of(method, &data), NOW_MS)
                    .unwrap_or_else(|e| panic!("{key} {method:?}: {e}"));
            }
        }
    }

    #[test]
    fn a_tampered_image_a_wrong_certificate_or_hash_method_is_refused_with_its_reason() {
        let mut data = image();
        let rsa = SigningCertificate::from_pem(&fixture("rsa.pem")).unwrap();
        let claim = claim("rsa", HashMethod::Sha256, KeyType::RsaPss);
        data[1000] ^= 1;
        let tampered = verify(&rsa, &claim, &digest_of(HashMethod::Sha256, &data), NOW_MS);
        assert!(tampered.unwrap_err().contains("does not verify"));
        data[1000] ^= 1;

        // The signature was made with SHA-256; the property says SHA-384.
        let mut wrong_hash = claim.clone();
        wrong_hash.hash_method = HashMethod::Sha384;
        let reason = verify(
            &rsa,
            &wrong_hash,
            &digest_of(HashMethod::Sha384, &data),
            NOW_MS,
        )
        .unwrap_err();
        assert!(
            reason.contains("does not verify") && reason.contains("SHA-384"),
            "{reason}"
        );

        // Another signer's certificate, of the same kind of key.
        let other = SigningCertificate::from_pem(&fixture("rsa-other.pem")).unwrap();
        let reason = verify(
            &other,
            &claim,
            &digest_of(HashMethod::Sha256, &data),
            NOW_MS,
        )
        .unwrap_err();
        assert!(
            reason.contains("does not verify") && reason.contains("Another signer"),
            "{reason}"
        );

        // The key type does not match the certificate's key.
        let mismatch = self::claim("rsa", HashMethod::Sha256, KeyType::EccSecp384r1);
        let reason = verify(
            &rsa,
            &mismatch,
            &digest_of(HashMethod::Sha256, &data),
            NOW_MS,
        )
        .unwrap_err();
        assert!(reason.contains("holds an RSA 3072-bit key"), "{reason}");
    }

    #[test]
    fn an_expired_or_not_yet_valid_certificate_is_refused() {
        let data = image();
        let claim = claim("rsa", HashMethod::Sha256, KeyType::RsaPss);
        let digest = digest_of(HashMethod::Sha256, &data);
        let expired = SigningCertificate::from_pem(&fixture("expired.pem")).unwrap();
        let reason = verify(&expired, &claim, &digest, NOW_MS).unwrap_err();
        assert!(reason.contains("expired on 2021-01-01"), "{reason}");
        let later = SigningCertificate::from_pem(&fixture("not-yet-valid.pem")).unwrap();
        let reason = verify(&later, &claim, &digest, NOW_MS).unwrap_err();
        assert!(reason.contains("not valid until 2040-01-01"), "{reason}");
        // rsa.pem holds the same key: at a time within its validity, the signature verifies,
        // and a day after its end it does not.
        let rsa = SigningCertificate::from_pem(&fixture("rsa.pem")).unwrap();
        verify(&rsa, &claim, &digest, rsa.not_before_ms).unwrap();
        let reason = verify(&rsa, &claim, &digest, rsa.not_after_ms + 86_400_000).unwrap_err();
        assert!(reason.contains("expired"), "{reason}");
    }

    #[test]
    fn certificates_are_read_with_their_details_and_refused_with_reasons() {
        let rsa = SigningCertificate::from_pem(&fixture("rsa.pem")).unwrap();
        assert_eq!(rsa.subject, "O=Example Images,CN=Image signing rsa");
        assert_eq!(rsa.issuer, rsa.subject);
        assert_eq!(rsa.key.bits(), 3072);
        assert_eq!(rsa.fingerprint_sha256.len(), 32 * 3 - 1);
        assert!(rsa.not_after_ms > rsa.not_before_ms);
        let p521 = SigningCertificate::from_pem(&fixture("p521.pem")).unwrap();
        assert_eq!(p521.key.kind(), KeyKind::EcP521);

        let refused = |text: &str| SigningCertificate::from_pem(text).unwrap_err();
        assert!(refused("hello").contains("not PEM"));
        assert!(
            refused("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .contains("private key")
        );
        assert!(
            refused("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .contains("holds a PUBLIC KEY, not a CERTIFICATE")
        );
        assert!(
            refused("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .contains("not an X.509 certificate")
        );
        let two = format!("{}{}", fixture("rsa.pem"), fixture("p384.pem"));
        assert!(refused(&two).contains("holds 2 certificates"));
        assert!(refused(&fixture("p256.pem")).contains("an EC P-256 key"));
        assert!(refused(&fixture("ed25519.pem")).contains("an Ed25519 key"));
        assert!(refused(&fixture("rsa1024.pem")).contains("1024 bits"));
    }
}
