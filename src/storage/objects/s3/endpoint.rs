//! Where a bucket's requests go, and how each dialect spells the headers that differ.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;

/// The two spellings of the S3 API this client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    /// S3 and S3-compatible stores: `x-amz-*` headers, SigV4.
    Aws,
    /// Tencent COS's own API: `x-cos-*` headers, COS signatures.
    Cos,
}

impl Dialect {
    pub(super) fn meta_prefix(self) -> &'static str {
        match self {
            Dialect::Aws => "x-amz-meta-",
            Dialect::Cos => "x-cos-meta-",
        }
    }

    /// The header (and value) that makes PutObject and CompleteMultipartUpload refuse to replace an object.
    pub(super) fn forbid_overwrite(self) -> (&'static str, &'static str) {
        match self {
            Dialect::Aws => ("if-none-match", "*"),
            Dialect::Cos => ("x-cos-forbid-overwrite", "true"),
        }
    }

    pub(super) fn copy_source(self) -> &'static str {
        match self {
            Dialect::Aws => "x-amz-copy-source",
            Dialect::Cos => "x-cos-copy-source",
        }
    }

    pub(super) fn copy_source_range(self) -> &'static str {
        match self {
            Dialect::Aws => "x-amz-copy-source-range",
            Dialect::Cos => "x-cos-copy-source-range",
        }
    }

    pub(super) fn copy_source_if_match(self) -> &'static str {
        match self {
            Dialect::Aws => "x-amz-copy-source-if-match",
            Dialect::Cos => "x-cos-copy-source-if-match",
        }
    }

    /// The directive that makes a copy take the request's metadata instead of the source's. COS documents
    /// `Replaced` (and requires it when source and destination are the same object); S3 says `REPLACE`.
    pub(super) fn replace_metadata_directive(self) -> (&'static str, &'static str) {
        match self {
            Dialect::Aws => ("x-amz-metadata-directive", "REPLACE"),
            Dialect::Cos => ("x-cos-metadata-directive", "Replaced"),
        }
    }
}

/// Every byte of a key but RFC 3986's unreserved characters and `/` is percent-encoded, once: what both
/// signers expect of a wire-ready URI, and what copy-source headers carry.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A query value: as a key, but `/` encoded too.
const QUERY_VALUE: &AsciiSet = &KEY.add(b'/');

pub(super) fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

pub(super) fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// One bucket's URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// `scheme://host[:port]` plus any path the endpoint has, and `/<bucket>` for path-style.
    bucket_base: String,
    /// What a copy-source header names an object of this bucket by, before the encoded key.
    copy_source_base: String,
}

impl Endpoint {
    /// COS: always virtual-host style, `scheme://<bucket>.<endpoint host>[:port]` (as OpenDAL's cos service
    /// builds it: https when the endpoint has no scheme, the bucket not repeated when the host starts with it).
    /// Copy sources use COS's documented form `<bucket>.<endpoint host>/<key>` (no scheme, no port).
    pub(super) fn cos(endpoint: &str, bucket: &str) -> Result<Self, String> {
        let url = parse(endpoint)?;
        let host = host_of(&url)?;
        let host = host.strip_prefix(&format!("{bucket}.")).unwrap_or(host);
        let bucket_host = format!("{bucket}.{host}");
        Ok(Endpoint {
            bucket_base: format!(
                "{}://{}{}{}",
                url.scheme(),
                bucket_host,
                port_suffix(&url),
                path_of(&url)
            ),
            copy_source_base: bucket_host,
        })
    }

    /// S3-compatible: path-style `endpoint/<bucket>` unless `virtual_host`, then `scheme://<bucket>.<host>`.
    /// Copy sources are `/<bucket>/<key>` either way (S3's form). AWS's global endpoint becomes the regional
    /// one, as OpenDAL does.
    pub(super) fn s3(
        endpoint: &str,
        bucket: &str,
        region: &str,
        virtual_host: bool,
    ) -> Result<Self, String> {
        let url = parse(endpoint)?;
        let host = host_of(&url)?;
        let host = host.strip_prefix(&format!("{bucket}.")).unwrap_or(host);
        let host = if host == "s3.amazonaws.com" {
            format!("s3.{region}.amazonaws.com")
        } else {
            host.to_string()
        };
        let (host, path) = if virtual_host {
            (format!("{bucket}.{host}"), path_of(&url).to_string())
        } else {
            (host, format!("{}/{bucket}", path_of(&url)))
        };
        Ok(Endpoint {
            bucket_base: format!("{}://{}{}{}", url.scheme(), host, port_suffix(&url), path),
            copy_source_base: format!("/{bucket}"),
        })
    }

    /// The URL of `key` with `query` (already encoded; "" for none).
    pub(super) fn object_url(&self, key: &str, query: &str) -> String {
        let mut url = format!("{}/{}", self.bucket_base, encode_key(key));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The bucket's own URL (for bucket-level requests such as ListMultipartUploads).
    pub(super) fn bucket_url(&self, query: &str) -> String {
        self.object_url("", query)
    }

    /// The value of a copy-source header naming `key` in this bucket.
    pub(super) fn copy_source(&self, key: &str) -> String {
        format!("{}/{}", self.copy_source_base, encode_key(key))
    }
}

fn parse(endpoint: &str) -> Result<Url, String> {
    let endpoint = endpoint.trim();
    let with_scheme = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("https://{endpoint}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "endpoint {endpoint:?}: scheme {other:?} is not http or https"
        )),
    }
}

fn host_of(url: &Url) -> Result<&str, String> {
    url.host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("endpoint {url} has no host"))
}

fn port_suffix(url: &Url) -> String {
    url.port().map(|p| format!(":{p}")).unwrap_or_default()
}

fn path_of(url: &Url) -> &str {
    url.path().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_is_virtual_host_and_keeps_the_port() {
        let e = Endpoint::cos("http://cos.ap-guangzhou.myqcloud.com:9000", "b-125").unwrap();
        assert_eq!(
            e.object_url("a b/c", "uploads"),
            "http://b-125.cos.ap-guangzhou.myqcloud.com:9000/a%20b/c?uploads"
        );
        assert_eq!(
            e.copy_source("a b/c"),
            "b-125.cos.ap-guangzhou.myqcloud.com/a%20b/c"
        );
        let e = Endpoint::cos("b-125.cos.ap-guangzhou.myqcloud.com", "b-125").unwrap();
        assert_eq!(
            e.bucket_url(""),
            "https://b-125.cos.ap-guangzhou.myqcloud.com/"
        );
    }

    #[test]
    fn s3_path_style_and_virtual_host() {
        let e = Endpoint::s3("http://127.0.0.1:9000", "bkt", "us-east-1", false).unwrap();
        assert_eq!(e.object_url("k", ""), "http://127.0.0.1:9000/bkt/k");
        assert_eq!(
            e.bucket_url("uploads"),
            "http://127.0.0.1:9000/bkt/?uploads"
        );
        assert_eq!(e.copy_source("dir/k+1"), "/bkt/dir/k%2B1");
        let e = Endpoint::s3("https://s3.amazonaws.com", "bkt", "eu-west-1", true).unwrap();
        assert_eq!(
            e.object_url("k", ""),
            "https://bkt.s3.eu-west-1.amazonaws.com/k"
        );
        assert_eq!(e.copy_source("k"), "/bkt/k");
        let e = Endpoint::s3("minio.local/prefix/", "bkt", "us-east-1", false).unwrap();
        assert_eq!(e.object_url("k", ""), "https://minio.local/prefix/bkt/k");
    }

    #[test]
    fn keys_are_encoded_once_and_keep_slashes() {
        assert_eq!(
            encode_key("odd dir/a b+c%中&=?#.txt"),
            "odd%20dir/a%20b%2Bc%25%E4%B8%AD%26%3D%3F%23.txt"
        );
        assert_eq!(encode_query_value("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn refuses_endpoints_without_a_usable_url() {
        assert!(Endpoint::s3("ftp://host", "b", "r", false).is_err());
        assert!(Endpoint::cos("", "b").is_err());
        assert!(Endpoint::s3("http://", "b", "r", false).is_err());
    }
}
