//! Joining upload `Location` headers (relative or absolute, with or without a query) and adding
//! the `digest=` parameter.

use pyslip_digest::Digest;
use url::Url;

/// Resolve a `Location` value against the URL of the request that returned it.
pub(crate) fn resolve(base: &Url, location: &str) -> Result<Url, url::ParseError> {
    base.join(location)
}

/// The URL to finish an upload at: `location` with `digest=<digest>` appended to its query.
pub(crate) fn with_digest(mut upload: Url, digest: &Digest) -> Url {
    upload
        .query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    upload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_relative_absolute_and_query_locations() {
        let base = Url::parse("http://127.0.0.1:5000/v2/app/blobs/uploads/").unwrap();
        let d = Digest::of(b"x");
        let cases = [
            (
                "/v2/app/blobs/uploads/abc?_state=xyz",
                format!(
                    "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?_state=xyz&digest=sha256%3A{}",
                    d.hex()
                ),
            ),
            (
                "/v2/app/blobs/uploads/abc",
                format!(
                    "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?digest=sha256%3A{}",
                    d.hex()
                ),
            ),
            (
                "https://storage.example/upload/1?sig=a%2Fb",
                format!(
                    "https://storage.example/upload/1?sig=a%2Fb&digest=sha256%3A{}",
                    d.hex()
                ),
            ),
            (
                "abc",
                format!(
                    "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?digest=sha256%3A{}",
                    d.hex()
                ),
            ),
        ];
        for (location, want) in cases {
            let got = with_digest(resolve(&base, location).unwrap(), &d);
            assert_eq!(got.as_str(), want, "{location}");
        }
    }
}
