//! OCI image references.

use crate::error::ValidationError;

/// An OCI image reference: `[registry[:port]/]path[:tag][@algo:hex]`, path components
/// lowercase `[a-z0-9]+([._-]|__)…`, tag `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_image(image: &str) -> Result<(), ValidationError> {
    let fail = |rule: &str| Err(ValidationError::new("image", image, rule));
    if image.is_empty() || image.len() > 512 {
        return fail("must be 1 to 512 characters");
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let valid = digest.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo.chars().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, '+' | '.' | '_' | '-')
                })
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !valid {
            return fail("digest must look like sha256:<64 hex digits>");
        }
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => (
            &rest[..last_slash + colon],
            Some(&rest[last_slash + colon + 1..]),
        ),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let valid = tag.len() <= 128
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return fail("tag must be 1-128 of letters, digits, _ . - (not starting with . or -)");
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
        if is_registry {
            let host_valid = first
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
                && !first.starts_with(['.', '-', ':']);
            if !host_valid {
                return fail("registry must be a host name with an optional :port");
            }
            components.remove(0);
        }
    }
    if components.is_empty() {
        return fail("needs a repository path");
    }
    for component in components {
        if !valid_path_component(component) {
            return fail(
                "repository path components are lowercase letters and digits, separated by . _ __ or -",
            );
        }
    }
    Ok(())
}

/// True when the image names a version: a digest, or a tag other than `latest`.
pub fn image_is_pinned(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').is_some_and(|(_, tag)| tag != "latest")
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if alnum(byte) {
            index += 1;
            continue;
        }
        // A separator: '.', '_', '__' or one or more '-', always followed by alnum.
        let separator_len = match byte {
            b'_' if bytes.get(index + 1) == Some(&b'_') => 2,
            b'.' | b'_' => 1,
            b'-' => bytes[index..].iter().take_while(|b| **b == b'-').count(),
            _ => return false,
        };
        index += separator_len;
        if !bytes.get(index).is_some_and(|b| alnum(*b)) {
            return false;
        }
    }
    true
}
