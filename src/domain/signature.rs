//! Signed images as Glance verifies them: four image properties name the signature, the hash
//! and key type it was made with, and the signing certificate; the bytes must verify against
//! them before the image becomes Active. Also the signing certificates' summary, as the
//! Certificates page shows it.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::validation::FieldError;

pub mod field {
    /// The image properties, named as Glance names them (also the form's field names).
    pub const SIGNATURE: &str = "img_signature";
    pub const HASH_METHOD: &str = "img_signature_hash_method";
    pub const KEY_TYPE: &str = "img_signature_key_type";
    pub const CERTIFICATE: &str = "img_signature_certificate_uuid";
    /// The Certificates page's upload.
    pub const CERTIFICATE_PEM: &str = "certificate_pem";
}

/// The four property names, in the order an error lists the missing ones.
pub const PROPERTY_NAMES: [&str; 4] = [
    field::SIGNATURE,
    field::HASH_METHOD,
    field::KEY_TYPE,
    field::CERTIFICATE,
];

/// The hash the signer ran over the image's bytes (`openssl dgst -sha256 …`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashMethod {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashMethod {
    pub const ALL: [HashMethod; 4] = [
        HashMethod::Sha224,
        HashMethod::Sha256,
        HashMethod::Sha384,
        HashMethod::Sha512,
    ];

    /// Glance's spelling, stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            HashMethod::Sha224 => "SHA-224",
            HashMethod::Sha256 => "SHA-256",
            HashMethod::Sha384 => "SHA-384",
            HashMethod::Sha512 => "SHA-512",
        }
    }

    /// `SHA-256`, as Glance spells it; `sha256` and `SHA256` are taken too.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let wanted = raw.trim().to_ascii_uppercase().replace('-', "");
        if wanted.is_empty() {
            return Err(FieldError::new(
                field::HASH_METHOD,
                "Choose the hash method.",
            ));
        }
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().replace('-', "") == wanted)
            .ok_or_else(|| {
                FieldError::new(
                    field::HASH_METHOD,
                    format!(
                        "The hash method must be SHA-224, SHA-256, SHA-384 or SHA-512 (found \"{}\").",
                        shorten(raw)
                    ),
                )
            })
    }
}

/// The kind of key and signature scheme, as Glance names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// RSA with PSS padding (MGF1 with the same hash, any salt length).
    RsaPss,
    /// ECDSA on NIST P-384, the signature DER-encoded as openssl writes it.
    EccSecp384r1,
    /// ECDSA on NIST P-521.
    EccSecp521r1,
}

/// Key types Glance accepts that the console does not verify (no well-kept Rust crate
/// implements the binary curves; DSA is deprecated for new signatures).
const KEY_TYPES_NOT_VERIFIED: [&str; 5] = [
    "ECC_SECT571K1",
    "ECC_SECT409K1",
    "ECC_SECT571R1",
    "ECC_SECT409R1",
    "DSA",
];

impl KeyType {
    pub const ALL: [KeyType; 3] = [
        KeyType::RsaPss,
        KeyType::EccSecp384r1,
        KeyType::EccSecp521r1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::RsaPss => "RSA-PSS",
            KeyType::EccSecp384r1 => "ECC_SECP384R1",
            KeyType::EccSecp521r1 => "ECC_SECP521R1",
        }
    }

    /// The scheme in words.
    pub fn label(self) -> &'static str {
        match self {
            KeyType::RsaPss => "RSA-PSS",
            KeyType::EccSecp384r1 => "ECDSA P-384",
            KeyType::EccSecp521r1 => "ECDSA P-521",
        }
    }

    /// The certificate key that signs with this scheme.
    pub fn key_kind(self) -> KeyKind {
        match self {
            KeyType::RsaPss => KeyKind::Rsa,
            KeyType::EccSecp384r1 => KeyKind::EcP384,
            KeyType::EccSecp521r1 => KeyKind::EcP521,
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let wanted = raw.trim().to_ascii_uppercase();
        if wanted.is_empty() {
            return Err(FieldError::new(field::KEY_TYPE, "Choose the key type."));
        }
        if let Some(known) = Self::ALL.into_iter().find(|k| k.as_str() == wanted) {
            return Ok(known);
        }
        let message = if KEY_TYPES_NOT_VERIFIED.contains(&wanted.as_str()) {
            format!(
                "{wanted} signatures are not verified here: sign with RSA-PSS, ECC_SECP384R1 or ECC_SECP521R1."
            )
        } else {
            format!(
                "The key type must be RSA-PSS, ECC_SECP384R1 or ECC_SECP521R1 (found \"{}\").",
                shorten(raw)
            )
        };
        Err(FieldError::new(field::KEY_TYPE, message))
    }
}

/// The public key a signing certificate holds, of the kinds the console verifies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyKind {
    Rsa,
    EcP384,
    EcP521,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Rsa => "rsa",
            KeyKind::EcP384 => "ec-p384",
            KeyKind::EcP521 => "ec-p521",
        }
    }

    pub fn from_db(raw: &str) -> Option<Self> {
        [KeyKind::Rsa, KeyKind::EcP384, KeyKind::EcP521]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }

    /// The key type an image signed with this key names.
    pub fn key_type(self) -> KeyType {
        match self {
            KeyKind::Rsa => KeyType::RsaPss,
            KeyKind::EcP384 => KeyType::EccSecp384r1,
            KeyKind::EcP521 => KeyType::EccSecp521r1,
        }
    }

    pub fn label(self, bits: u32) -> String {
        match self {
            KeyKind::Rsa => format!("RSA {bits}-bit"),
            KeyKind::EcP384 => "EC P-384".into(),
            KeyKind::EcP521 => "EC P-521".into(),
        }
    }
}

/// `img_signature`: the signature's bytes, base64 as `base64 -w 0` writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureValue(Vec<u8>);

impl SignatureValue {
    /// Longer than any signature of an 8192-bit RSA key (1024 bytes).
    pub const MAX_CHARS: usize = 4096;

    /// Line breaks and spaces (a wrapped `base64` output) are ignored.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: &str| Err(FieldError::new(field::SIGNATURE, m));
        let text: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if text.is_empty() {
            return err("Enter the signature (base64).");
        }
        if text.len() > Self::MAX_CHARS {
            return err("The signature is longer than 4096 characters: it is not one signature.");
        }
        match base64::engine::general_purpose::STANDARD.decode(&text) {
            Ok(bytes) if bytes.len() >= 32 => Ok(Self(bytes)),
            Ok(_) => err("The signature is too short to be an RSA or ECDSA signature."),
            Err(_) => err(
                "The signature is not base64: encode the signature file with `base64 -w 0 image.signature`.",
            ),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

/// `img_signature_certificate_uuid`: the id of one of the account's certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRef(String);

impl CertificateRef {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let id = raw.trim().to_ascii_lowercase();
        if id.is_empty() {
            return Err(FieldError::new(field::CERTIFICATE, "Choose a certificate."));
        }
        if id.len() > Self::MAX_CHARS || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(FieldError::new(
                field::CERTIFICATE,
                "A certificate id is a UUID, as the Certificates page shows it.",
            ));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The four properties as an image holds them. Each may be missing: the image API sets them
/// one at a time, and only the verification decides whether they are complete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureProperties {
    pub signature: Option<String>,
    pub hash_method: Option<HashMethod>,
    pub key_type: Option<KeyType>,
    pub certificate_id: Option<String>,
}

impl SignatureProperties {
    /// No signature property at all: the image is not signed.
    pub fn is_empty(&self) -> bool {
        self.signature.is_none()
            && self.hash_method.is_none()
            && self.key_type.is_none()
            && self.certificate_id.is_none()
    }

    /// What the bytes must verify against: `None` when unsigned, an error (the reason the
    /// image fails) when a property is missing or unreadable.
    pub fn claim(&self) -> Result<Option<SignatureClaim>, String> {
        if self.is_empty() {
            return Ok(None);
        }
        let present = [
            self.signature.is_some(),
            self.hash_method.is_some(),
            self.key_type.is_some(),
            self.certificate_id.is_some(),
        ];
        let missing: Vec<&str> = PROPERTY_NAMES
            .into_iter()
            .zip(present)
            .filter(|(_, present)| !present)
            .map(|(name, _)| name)
            .collect();
        let (Some(signature), Some(hash_method), Some(key_type), Some(certificate_id)) = (
            &self.signature,
            self.hash_method,
            self.key_type,
            &self.certificate_id,
        ) else {
            return Err(format!(
                "The image's signature properties are incomplete ({} missing): a signed image needs all four of img_signature, img_signature_hash_method, img_signature_key_type and img_signature_certificate_uuid.",
                missing.join(", ")
            ));
        };
        let signature = SignatureValue::parse(signature).map_err(|e| e.message)?;
        let certificate = CertificateRef::parse(certificate_id).map_err(|e| e.message)?;
        Ok(Some(SignatureClaim {
            signature,
            hash_method,
            key_type,
            certificate,
        }))
    }
}

/// A complete set of signature properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureClaim {
    pub signature: SignatureValue,
    pub hash_method: HashMethod,
    pub key_type: KeyType,
    pub certificate: CertificateRef,
}

/// Create Image's optional Signature section, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureForm {
    pub certificate_id: String,
    pub hash_method: String,
    pub key_type: String,
    pub signature: String,
}

impl SignatureForm {
    /// Nothing filled in: the image is not signed. Otherwise every field must be valid.
    pub fn parse(&self) -> Result<Option<SignatureClaim>, Vec<FieldError>> {
        if [
            &self.certificate_id,
            &self.hash_method,
            &self.key_type,
            &self.signature,
        ]
        .iter()
        .all(|f| f.trim().is_empty())
        {
            return Ok(None);
        }
        let certificate = CertificateRef::parse(&self.certificate_id);
        let hash_method = HashMethod::parse(&self.hash_method);
        let key_type = KeyType::parse(&self.key_type);
        let signature = SignatureValue::parse(&self.signature);
        match (certificate, hash_method, key_type, signature) {
            (Ok(certificate), Ok(hash_method), Ok(key_type), Ok(signature)) => {
                Ok(Some(SignatureClaim {
                    signature,
                    hash_method,
                    key_type,
                    certificate,
                }))
            }
            (c, h, k, s) => Err([c.err(), h.err(), k.err(), s.err()]
                .into_iter()
                .flatten()
                .collect()),
        }
    }
}

impl SignatureClaim {
    pub fn properties(&self) -> SignatureProperties {
        SignatureProperties {
            signature: Some(self.signature.to_base64()),
            hash_method: Some(self.hash_method),
            key_type: Some(self.key_type),
            certificate_id: Some(self.certificate.as_str().to_owned()),
        }
    }
}

/// What a verification recorded, shown on Image Details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedSignature {
    pub verified_at_ms: i64,
    pub certificate_subject: String,
    /// SHA-256 of the certificate's DER, `AB:CD:…` as `openssl x509 -fingerprint` prints it.
    pub certificate_fingerprint: String,
    pub hash_method: HashMethod,
    pub key_type: KeyType,
}

impl VerifiedSignature {
    /// "RSA-PSS with SHA-256".
    pub fn algorithm(&self) -> String {
        format!(
            "{} with {}",
            self.key_type.label(),
            self.hash_method.as_str()
        )
    }
}

/// A signing certificate as the Certificates page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSummary {
    pub id: String,
    pub subject: String,
    pub issuer: String,
    pub fingerprint_sha256: String,
    pub key_kind: KeyKind,
    pub key_bits: u32,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    pub created_at_ms: i64,
    /// Images waiting for or receiving bytes that name it: it cannot be deleted meanwhile.
    pub pending_images: u32,
    /// Images whose signature verified against it.
    pub verified_images: u32,
    /// Valid, expired or not yet valid, as of the listing.
    pub validity: Validity,
}

impl CertificateSummary {
    pub fn key_label(&self) -> String {
        self.key_kind.label(self.key_bits)
    }

    /// Expired, not yet valid, or valid at `now_ms`.
    pub fn validity_at(&self, now_ms: i64) -> Validity {
        if now_ms < self.not_before_ms {
            Validity::NotYetValid
        } else if now_ms > self.not_after_ms {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Validity {
    Valid,
    Expired,
    NotYetValid,
}

impl Validity {
    pub fn label(self) -> &'static str {
        match self {
            Validity::Valid => "Valid",
            Validity::Expired => "Expired",
            Validity::NotYetValid => "Not yet valid",
        }
    }
}

/// A certificate file as uploaded, checked for its shape (the server then reads it whole).
pub struct CertificatePem;

impl CertificatePem {
    /// Longest file taken: a signing certificate is a few KiB.
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn parse(raw: &str) -> Result<(), FieldError> {
        let err = |m: &str| Err(FieldError::new(field::CERTIFICATE_PEM, m));
        if raw.trim().is_empty() {
            return err("Choose a certificate file, or paste the certificate (PEM).");
        }
        if raw.len() > Self::MAX_BYTES {
            return err("The file is larger than 64 KiB: a signing certificate is a few KiB.");
        }
        if raw.contains("PRIVATE KEY-----") {
            return err(
                "The file holds a private key. Upload only the certificate, and keep the private key to yourself.",
            );
        }
        if !raw.contains("-----BEGIN ") {
            return err(
                "The file is not PEM: a certificate file begins with -----BEGIN CERTIFICATE-----.",
            );
        }
        Ok(())
    }
}

fn shorten(raw: &str) -> String {
    raw.trim().chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_methods_and_key_types_take_glances_names() {
        assert_eq!(HashMethod::parse("SHA-256").unwrap(), HashMethod::Sha256);
        assert_eq!(HashMethod::parse("sha384").unwrap(), HashMethod::Sha384);
        assert!(HashMethod::parse("MD5").is_err());
        assert_eq!(KeyType::parse("RSA-PSS").unwrap(), KeyType::RsaPss);
        assert_eq!(
            KeyType::parse("ecc_secp521r1").unwrap(),
            KeyType::EccSecp521r1
        );
        let refused = KeyType::parse("ECC_SECT571K1").unwrap_err().message;
        assert!(refused.contains("not verified here"), "{refused}");
        assert!(
            KeyType::parse("ED25519")
                .unwrap_err()
                .message
                .contains("must be")
        );
    }

    #[test]
    fn a_signature_is_base64_of_a_plausible_length() {
        let good = "QUJD".repeat(16);
        assert_eq!(SignatureValue::parse(&good).unwrap().bytes().len(), 48);
        let wrapped = format!("{}\n{}", &good[..20], &good[20..]);
        assert_eq!(SignatureValue::parse(&wrapped).unwrap().to_base64(), good);
        assert!(
            SignatureValue::parse("not base64!")
                .unwrap_err()
                .message
                .contains("not base64")
        );
        assert!(
            SignatureValue::parse("QUJD")
                .unwrap_err()
                .message
                .contains("too short")
        );
        assert!(SignatureValue::parse(&"A".repeat(5000)).is_err());
    }

    #[test]
    fn incomplete_properties_name_what_is_missing() {
        let props = SignatureProperties {
            signature: Some("QUJD".repeat(16)),
            hash_method: Some(HashMethod::Sha256),
            ..Default::default()
        };
        let reason = props.claim().unwrap_err();
        assert!(
            reason.contains("img_signature_key_type, img_signature_certificate_uuid missing"),
            "{reason}"
        );
        assert_eq!(SignatureProperties::default().claim().unwrap(), None);
    }

    #[test]
    fn the_form_is_all_or_nothing() {
        assert_eq!(SignatureForm::default().parse().unwrap(), None);
        let errors = SignatureForm {
            hash_method: "SHA-256".into(),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [field::CERTIFICATE, field::KEY_TYPE, field::SIGNATURE]
        );
        let claim = SignatureForm {
            certificate_id: "0B5D3C1E-AAAA-4BBB-8CCC-0123456789AB".into(),
            hash_method: "SHA-512".into(),
            key_type: "ECC_SECP384R1".into(),
            signature: "QUJD".repeat(16),
        }
        .parse()
        .unwrap()
        .unwrap();
        assert_eq!(
            claim.certificate.as_str(),
            "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab"
        );
        assert_eq!(claim.properties().claim().unwrap(), Some(claim));
    }
}
