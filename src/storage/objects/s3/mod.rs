//! The `s3` backend: S3 and Tencent COS over their HTTP APIs, signed with reqsign, sent with reqwest.
//!
//! One client per account. Requests are retried within a time budget (see [`retry`]), so that a dead or stalled
//! store surfaces as an error in at most about 15 s, and a transfer that keeps moving is never cut.

mod endpoint;
mod error;
mod retry;
mod sign;
mod transport;
mod xml;

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use md5::{Digest, Md5};
use opendal::ErrorKind;
use tracing::warn;

use self::endpoint::{encode_query_value, Dialect, Endpoint};
use self::retry::RetryPolicy;
use self::sign::StoreSigner;
use self::transport::{Request, Response, Transport, Wait};
use super::faults::FaultHook;
use super::{
    Committed, ObjectHead, ObjectMeta, Overwrite, PendingUpload, StoreChecksums, UploadId,
    UploadLimits, UploadedPart, GIB,
};
use crate::config::StorageConfig;
use crate::storage::{StorageError, StorageOptions, StoreHealth};

const MIB: u64 = 1024 * 1024;
/// The largest object one CopyObject can copy, on S3 and on COS.
const MAX_SINGLE_COPY: u64 = 5 * GIB;
/// How many part copies of a large metadata change run at once.
const COPY_CONCURRENCY: usize = 4;

#[derive(Clone, Debug)]
pub(super) struct S3Objects {
    shared: Arc<Shared>,
    single_copy_limit: u64,
}

#[derive(Debug)]
struct Shared {
    dialect: Dialect,
    endpoint: Endpoint,
    transport: Transport,
    limits: UploadLimits,
}

impl S3Objects {
    pub(super) fn new(
        config: &StorageConfig,
        options: &StorageOptions,
        faults: FaultHook,
        health: StoreHealth,
    ) -> Result<Self, StorageError> {
        let (dialect, endpoint, signer) = match config {
            StorageConfig::Cos {
                bucket,
                endpoint,
                secret_id,
                secret_key,
            } => (
                Dialect::Cos,
                Endpoint::cos(endpoint, bucket).map_err(StorageError::Invalid)?,
                StoreSigner::cos(secret_id.expose(), secret_key.expose()),
            ),
            StorageConfig::S3 {
                bucket,
                endpoint,
                region,
                access_key,
                secret_key,
                virtual_host,
            } => (
                Dialect::Aws,
                Endpoint::s3(endpoint, bucket, region, *virtual_host)
                    .map_err(StorageError::Invalid)?,
                StoreSigner::aws(access_key.expose(), secret_key.expose(), region),
            ),
            StorageConfig::Fs { .. } | StorageConfig::Memory => {
                return Err(StorageError::Invalid(
                    "the s3 object client needs a cos or s3 store".into(),
                ))
            }
        };
        let policy = RetryPolicy::DEFAULT;
        let client = crate::storage::http_client(options, policy.connect_timeout)?;
        let min_part = match dialect {
            Dialect::Aws => 5 * MIB,
            Dialect::Cos => MIB,
        };
        Ok(S3Objects {
            shared: Arc::new(Shared {
                dialect,
                endpoint,
                transport: Transport::new(client, signer, faults, policy, health),
                limits: UploadLimits {
                    min_part,
                    max_part: 5 * GIB,
                    max_parts: 10_000,
                },
            }),
            single_copy_limit: MAX_SINGLE_COPY,
        })
    }

    pub(super) fn set_single_copy_limit(&mut self, limit: u64) {
        self.single_copy_limit = limit.clamp(self.shared.limits.min_part, MAX_SINGLE_COPY);
    }

    pub(super) fn limits(&self) -> UploadLimits {
        self.shared.limits
    }

    /// Whether the store reports the CRC-64 of what it stores (COS's `x-cos-hash-crc64ecma`).
    pub(super) fn reports_crc64(&self) -> bool {
        self.dialect() == Dialect::Cos
    }

    fn dialect(&self) -> Dialect {
        self.shared.dialect
    }

    pub(super) fn is_cos(&self) -> bool {
        self.dialect() == Dialect::Cos
    }

    async fn send(&self, req: &Request) -> opendal::Result<Response> {
        self.shared.transport.send(req).await
    }

    pub(super) async fn head(&self, key: &str) -> opendal::Result<Option<ObjectHead>> {
        const OP: &str = "HeadObject";
        let mut req = Request::new(OP, Method::HEAD, self.shared.endpoint.object_url(key, ""));
        if self.dialect() == Dialect::Aws {
            // S3 returns the object's x-amz-checksum-* only when asked.
            req.headers
                .insert("x-amz-checksum-mode", HeaderValue::from_static("ENABLED"));
        }
        let response = match self.send(&req).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let headers = &response.headers;
        let size = header_str(headers, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| error::bad_answer(OP, "no Content-Length"))?;
        Ok(Some(ObjectHead {
            size,
            etag: etag_header(headers),
            last_modified: last_modified(headers),
            meta: ObjectMeta {
                content_type: header_str(headers, "content-type").map(str::to_string),
                user: user_metadata(headers, self.dialect().meta_prefix()),
            },
            checksums: checksums(headers),
        }))
    }

    pub(super) async fn put(
        &self,
        key: &str,
        body: Bytes,
        meta: &ObjectMeta,
        overwrite: Overwrite,
        content_md5: Option<[u8; 16]>,
    ) -> opendal::Result<Committed> {
        const OP: &str = "PutObject";
        let mut req = Request::new(OP, Method::PUT, self.shared.endpoint.object_url(key, ""));
        self.add_meta(OP, &mut req.headers, meta)?;
        self.add_overwrite(&mut req.headers, overwrite);
        add_content_md5(&mut req.headers, content_md5);
        req.body = body.clone();
        let (result, attempts) = self.shared.transport.send_counted(&req).await;
        match result {
            Ok(response) => Ok(committed(&response.headers, None)),
            Err(e) if attempts > 1 && lost_answer(&e) => {
                // An earlier attempt may have stored the object and lost its answer; then the retry finds
                // "its own" object (412 with Forbid). The object is ours if its ETag is our body's MD5.
                let expected = hex::encode(Md5::digest(&body));
                self.recover_lost_answer(key, &expected, e).await
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn create_upload(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> opendal::Result<UploadId> {
        const OP: &str = "CreateMultipartUpload";
        let mut req = Request::new(
            OP,
            Method::POST,
            self.shared.endpoint.object_url(key, "uploads"),
        );
        self.add_meta(OP, &mut req.headers, meta)?;
        let response = self.send(&req).await?;
        let result: xml::InitiateMultipartUploadResult = parse(OP, &response.body)?;
        Ok(UploadId(result.upload_id))
    }

    pub(super) async fn upload_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        body: Bytes,
        content_md5: Option<[u8; 16]>,
    ) -> opendal::Result<UploadedPart> {
        const OP: &str = "UploadPart";
        self.check_part_number(OP, number)?;
        let size = body.len() as u64;
        let mut req = Request::new(OP, Method::PUT, self.part_url(key, id, number));
        add_content_md5(&mut req.headers, content_md5);
        req.body = body;
        let response = self.send(&req).await?;
        let etag =
            etag_header(&response.headers).ok_or_else(|| error::bad_answer(OP, "no ETag"))?;
        Ok(UploadedPart {
            number,
            etag,
            size,
            checksums: checksums(&response.headers),
        })
    }

    pub(super) async fn copy_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        source: &str,
        range: Range<u64>,
    ) -> opendal::Result<UploadedPart> {
        self.copy_part_if(key, id, number, source, range, None)
            .await
    }

    async fn copy_part_if(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        source: &str,
        range: Range<u64>,
        source_etag: Option<&str>,
    ) -> opendal::Result<UploadedPart> {
        const OP: &str = "UploadPartCopy";
        self.check_part_number(OP, number)?;
        if range.is_empty() {
            return Err(error::invalid(
                OP,
                ErrorKind::RangeNotSatisfied,
                format!("empty range {range:?}"),
            ));
        }
        let dialect = self.dialect();
        let mut req = Request::new(OP, Method::PUT, self.part_url(key, id, number));
        req.wait = Wait::ServerWork;
        req.error_in_ok_body = true;
        insert(
            OP,
            &mut req.headers,
            dialect.copy_source(),
            &self.shared.endpoint.copy_source(source),
        )?;
        insert(
            OP,
            &mut req.headers,
            dialect.copy_source_range(),
            &format!("bytes={}-{}", range.start, range.end - 1),
        )?;
        if let Some(etag) = source_etag {
            insert(
                OP,
                &mut req.headers,
                dialect.copy_source_if_match(),
                &format!("\"{etag}\""),
            )?;
        }
        let response = self.send(&req).await?;
        let result: xml::ETagResult = parse(OP, &response.body)?;
        let etag = result
            .etag
            .map(|e| unquote(&e))
            .ok_or_else(|| error::bad_answer(OP, "no ETag"))?;
        Ok(UploadedPart {
            number,
            etag,
            size: range.end - range.start,
            checksums: StoreChecksums::default(),
        })
    }

    pub(super) async fn list_parts(
        &self,
        key: &str,
        id: &UploadId,
    ) -> opendal::Result<Vec<UploadedPart>> {
        const OP: &str = "ListParts";
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = format!("uploadId={}", encode_query_value(&id.0));
            if let Some(m) = &marker {
                query.push_str(&format!("&part-number-marker={}", encode_query_value(m)));
            }
            let req = Request::new(
                OP,
                Method::GET,
                self.shared.endpoint.object_url(key, &query),
            );
            let response = self.send(&req).await?;
            let page: xml::ListPartsResult = parse(OP, &response.body)?;
            parts.extend(page.part.into_iter().map(|p| UploadedPart {
                number: p.part_number,
                etag: unquote(&p.etag),
                size: p.size,
                checksums: StoreChecksums::default(),
            }));
            if !page.is_truncated {
                break;
            }
            marker = Some(next_marker(
                OP,
                marker.as_deref(),
                page.next_part_number_marker,
            )?);
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    pub(super) async fn list_uploads(&self, prefix: &str) -> opendal::Result<Vec<PendingUpload>> {
        const OP: &str = "ListMultipartUploads";
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = format!("uploads&prefix={}", encode_query_value(prefix));
            if let Some((key, id)) = &markers {
                query.push_str(&format!(
                    "&key-marker={}&upload-id-marker={}",
                    encode_query_value(key),
                    encode_query_value(id)
                ));
            }
            let req = Request::new(OP, Method::GET, self.shared.endpoint.bucket_url(&query));
            let response = self.send(&req).await?;
            let page: xml::ListMultipartUploadsResult = parse(OP, &response.body)?;
            uploads.extend(page.upload.into_iter().map(|u| PendingUpload {
                key: u.key,
                id: UploadId(u.upload_id),
                initiated: u.initiated.as_deref().and_then(parse_rfc3339),
            }));
            if !page.is_truncated {
                break;
            }
            let next = match (page.next_key_marker, page.next_upload_id_marker) {
                (Some(k), Some(u)) if markers.as_ref() != Some(&(k.clone(), u.clone())) => (k, u),
                _ => {
                    return Err(error::bad_answer(
                        OP,
                        "a truncated page without new markers",
                    ))
                }
            };
            markers = Some(next);
        }
        uploads.sort_by(|a, b| a.key.cmp(&b.key).then(a.initiated.cmp(&b.initiated)));
        Ok(uploads)
    }

    pub(super) async fn complete_upload(
        &self,
        key: &str,
        id: &UploadId,
        parts: &[UploadedPart],
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        const OP: &str = "CompleteMultipartUpload";
        if parts.is_empty() {
            return Err(error::invalid(OP, ErrorKind::Unexpected, "no parts"));
        }
        let document = xml::CompleteMultipartUpload {
            parts: parts
                .iter()
                .map(|p| xml::CompletedPart {
                    part_number: p.number,
                    etag: format!("\"{}\"", p.etag),
                })
                .collect(),
        };
        let body = xml::serialize(&document)
            .map_err(|e| error::invalid(OP, ErrorKind::Unexpected, e.to_string()))?;
        let query = format!("uploadId={}", encode_query_value(&id.0));
        let mut req = Request::new(
            OP,
            Method::POST,
            self.shared.endpoint.object_url(key, &query),
        );
        req.wait = Wait::ServerWork;
        req.error_in_ok_body = true;
        req.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        self.add_overwrite(&mut req.headers, overwrite);
        req.body = Bytes::from(body);
        let (result, attempts) = self.shared.transport.send_counted(&req).await;
        match result {
            Ok(response) => {
                let result: xml::ETagResult = parse(OP, &response.body)?;
                Ok(committed(&response.headers, result.etag.as_deref()))
            }
            Err(e) if attempts > 1 && lost_answer(&e) => match multipart_etag(parts) {
                Some(expected) => self.recover_lost_answer(key, &expected, e).await,
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    pub(super) async fn abort_upload(&self, key: &str, id: &UploadId) -> opendal::Result<()> {
        const OP: &str = "AbortMultipartUpload";
        let query = format!("uploadId={}", encode_query_value(&id.0));
        let req = Request::new(
            OP,
            Method::DELETE,
            self.shared.endpoint.object_url(key, &query),
        );
        self.send(&req).await.map(drop)
    }

    pub(super) async fn replace_metadata(
        &self,
        key: &str,
        current: &ObjectHead,
        meta: &ObjectMeta,
    ) -> opendal::Result<Committed> {
        if current.size > self.single_copy_limit {
            return self.replace_metadata_in_parts(key, current, meta).await;
        }
        const OP: &str = "CopyObject";
        let dialect = self.dialect();
        let mut req = Request::new(OP, Method::PUT, self.shared.endpoint.object_url(key, ""));
        req.wait = Wait::ServerWork;
        req.error_in_ok_body = true;
        insert(
            OP,
            &mut req.headers,
            dialect.copy_source(),
            &self.shared.endpoint.copy_source(key),
        )?;
        let (name, value) = dialect.replace_metadata_directive();
        insert(OP, &mut req.headers, name, value)?;
        if let Some(etag) = &current.etag {
            insert(
                OP,
                &mut req.headers,
                dialect.copy_source_if_match(),
                &format!("\"{etag}\""),
            )?;
        }
        self.add_meta(OP, &mut req.headers, meta)?;
        let response = self.send(&req).await?;
        let result: xml::ETagResult = parse(OP, &response.body)?;
        let mut committed = committed(&response.headers, result.etag.as_deref());
        if let Some(time) = result.last_modified.as_deref().and_then(parse_rfc3339) {
            committed.last_modified = Some(time);
        }
        Ok(committed)
    }

    /// A copy onto itself in parts, for objects one CopyObject cannot copy. Every part copy is conditional on
    /// the ETag of `current`, so the new object is made of one version only.
    async fn replace_metadata_in_parts(
        &self,
        key: &str,
        current: &ObjectHead,
        meta: &ObjectMeta,
    ) -> opendal::Result<Committed> {
        let limits = self.shared.limits;
        let part_size = self
            .single_copy_limit
            .max(current.size.div_ceil(u64::from(limits.max_parts)));
        let ranges: Vec<(u32, Range<u64>)> = (0..current.size)
            .step_by(usize::try_from(part_size).unwrap_or(usize::MAX))
            .zip(1u32..)
            .map(|(start, n)| (n, start..(start + part_size).min(current.size)))
            .collect();
        let id = self.create_upload(key, meta).await?;
        let etag = current.etag.as_deref();
        let copied: opendal::Result<Vec<UploadedPart>> = futures::stream::iter(
            ranges
                .into_iter()
                .map(|(n, range)| self.copy_part_if(key, &id, n, key, range, etag)),
        )
        .buffered(COPY_CONCURRENCY)
        .try_collect()
        .await;
        let result = match copied {
            Ok(parts) => {
                self.complete_upload(key, &id, &parts, Overwrite::Allow)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if let Err(abort) = self.abort_upload(key, &id).await {
                warn!(key, upload = %id.0, error = %abort, "cannot abort the copy upload of a failed metadata change (after: {e})");
            }
        }
        result
    }

    /// After a retried write failed as "exists" or "no such upload": if the object at `key` has the ETag our
    /// write would have given it, an earlier attempt succeeded and only its answer was lost.
    async fn recover_lost_answer(
        &self,
        key: &str,
        expected_etag: &str,
        original: opendal::Error,
    ) -> opendal::Result<Committed> {
        match self.head(key).await {
            Ok(Some(head)) if head.etag.as_deref() == Some(expected_etag) => Ok(Committed {
                etag: head.etag,
                last_modified: head.last_modified,
                checksums: head.checksums,
            }),
            _ => Err(original),
        }
    }

    fn part_url(&self, key: &str, id: &UploadId, number: u32) -> String {
        let query = format!("partNumber={number}&uploadId={}", encode_query_value(&id.0));
        self.shared.endpoint.object_url(key, &query)
    }

    fn check_part_number(&self, op: &'static str, number: u32) -> opendal::Result<()> {
        if (1..=self.shared.limits.max_parts).contains(&number) {
            Ok(())
        } else {
            Err(error::invalid(
                op,
                ErrorKind::Unexpected,
                format!(
                    "part number {number} is not in 1..={}",
                    self.shared.limits.max_parts
                ),
            ))
        }
    }

    fn add_meta(
        &self,
        op: &'static str,
        headers: &mut HeaderMap,
        meta: &ObjectMeta,
    ) -> opendal::Result<()> {
        if let Some(content_type) = &meta.content_type {
            insert(op, headers, "content-type", content_type)?;
        }
        let prefix = self.dialect().meta_prefix();
        for (name, value) in &meta.user {
            insert(op, headers, &format!("{prefix}{name}"), value)?;
        }
        Ok(())
    }

    fn add_overwrite(&self, headers: &mut HeaderMap, overwrite: Overwrite) {
        if overwrite == Overwrite::Forbid {
            let (name, value) = self.dialect().forbid_overwrite();
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

fn insert(
    op: &'static str,
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
) -> opendal::Result<()> {
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        error::invalid(
            op,
            ErrorKind::Unexpected,
            format!("{name:?} is no header name"),
        )
    })?;
    let value = HeaderValue::from_str(value).map_err(|_| {
        error::invalid(
            op,
            ErrorKind::Unexpected,
            format!("the value of {name} is no header value: {value:?}"),
        )
    })?;
    headers.insert(header, value);
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(op: &'static str, body: &[u8]) -> opendal::Result<T> {
    xml::parse(body).map_err(|e| error::bad_answer(op, format!("unreadable XML: {e}")))
}

/// The errors a retry gets when an earlier attempt of the same write did succeed.
fn lost_answer(err: &opendal::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConditionNotMatch | ErrorKind::NotFound
    )
}

/// The ETag S3 and COS give a completed multipart upload: the MD5 of the parts' binary MD5s, `-<parts>`. `None`
/// when a part's ETag is no MD5 (then nothing can be concluded).
fn multipart_etag(parts: &[UploadedPart]) -> Option<String> {
    let mut digests = Vec::with_capacity(parts.len() * 16);
    for part in parts {
        let digest = hex::decode(&part.etag).ok().filter(|d| d.len() == 16)?;
        digests.extend_from_slice(&digest);
    }
    Some(format!(
        "{}-{}",
        hex::encode(Md5::digest(&digests)),
        parts.len()
    ))
}

fn next_marker(
    op: &'static str,
    previous: Option<&str>,
    next: Option<String>,
) -> opendal::Result<String> {
    match next {
        Some(next) if Some(next.as_str()) != previous => Ok(next),
        _ => Err(error::bad_answer(
            op,
            "a truncated page without a new marker",
        )),
    }
}

fn committed(headers: &HeaderMap, body_etag: Option<&str>) -> Committed {
    Committed {
        etag: body_etag.map(unquote).or_else(|| etag_header(headers)),
        last_modified: last_modified(headers),
        checksums: checksums(headers),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

fn etag_header(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "etag").map(unquote)
}

fn last_modified(headers: &HeaderMap) -> Option<SystemTime> {
    let value = header_str(headers, "last-modified")?;
    chrono::DateTime::parse_from_rfc2822(value)
        .ok()
        .map(SystemTime::from)
}

fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(SystemTime::from)
}

fn user_metadata(headers: &HeaderMap, prefix: &str) -> std::collections::BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix(prefix)?;
            Some((
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect()
}

fn checksums(headers: &HeaderMap) -> StoreChecksums {
    StoreChecksums {
        crc64ecma: header_str(headers, "x-cos-hash-crc64ecma").and_then(|v| v.trim().parse().ok()),
        crc32: header_str(headers, "x-amz-checksum-crc32").map(str::to_string),
        md5: etag_md5(headers),
    }
}

/// The ETag as an MD5, when it is one. S3 and COS make a single PUT's (and a part's) ETag the MD5 of its bytes,
/// except under KMS or customer-key encryption, whose ETags look the same but are not (AWS: "Objects encrypted
/// by SSE-C or SSE-KMS have ETags that are not an MD5 digest"); multipart ETags carry a `-N` suffix.
fn etag_md5(headers: &HeaderMap) -> Option<[u8; 16]> {
    let kms_or_customer_key = [
        "x-amz-server-side-encryption",
        "x-cos-server-side-encryption",
    ]
    .iter()
    .filter_map(|name| header_str(headers, name))
    .any(|v| v.to_ascii_lowercase().contains("kms"))
        || [
            "x-amz-server-side-encryption-customer-algorithm",
            "x-cos-server-side-encryption-customer-algorithm",
        ]
        .iter()
        .any(|name| headers.contains_key(*name));
    if kms_or_customer_key {
        return None;
    }
    let etag = etag_header(headers)?;
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(&etag, &mut md5).ok()?;
    Some(md5)
}

/// `Content-MD5`: the store computes the MD5 of what arrived and refuses the request (`BadDigest`) when it
/// differs, so a body damaged on the way is never stored.
fn add_content_md5(headers: &mut http::HeaderMap, md5: Option<[u8; 16]>) {
    use base64::Engine as _;
    let Some(md5) = md5 else { return };
    let value = base64::engine::general_purpose::STANDARD.encode(md5);
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        headers.insert("content-md5", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_is_the_md5_of_the_part_md5s() {
        // Two parts: "a" and "b"; S3 would give md5(md5("a") ‖ md5("b")) + "-2".
        let parts = [
            UploadedPart {
                number: 1,
                etag: hex::encode(Md5::digest(b"a")),
                size: 1,
                checksums: StoreChecksums::default(),
            },
            UploadedPart {
                number: 2,
                etag: hex::encode(Md5::digest(b"b")),
                size: 1,
                checksums: StoreChecksums::default(),
            },
        ];
        let mut both = Md5::digest(b"a").to_vec();
        both.extend_from_slice(&Md5::digest(b"b"));
        assert_eq!(
            multipart_etag(&parts),
            Some(format!("{}-2", hex::encode(Md5::digest(&both))))
        );
        let odd = [UploadedPart {
            number: 1,
            etag: "not-an-md5".into(),
            size: 1,
            checksums: StoreChecksums::default(),
        }];
        assert_eq!(multipart_etag(&odd), None);
    }

    #[test]
    fn head_headers_become_metadata_and_checksums() {
        let mut h = HeaderMap::new();
        h.insert("etag", "\"abc\"".parse().unwrap());
        h.insert(
            "last-modified",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        h.insert("x-cos-meta-mtime", "1700000000".parse().unwrap());
        h.insert("x-amz-meta-mode", "33188".parse().unwrap());
        h.insert(
            "x-cos-hash-crc64ecma",
            "11051210869376104954".parse().unwrap(),
        );
        h.insert("x-amz-checksum-crc32", "9CR0Uw==".parse().unwrap());
        let c = committed(&h, None);
        assert_eq!(c.etag.as_deref(), Some("abc"));
        assert_eq!(
            c.last_modified,
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_445_412_480))
        );
        assert_eq!(c.checksums.crc64ecma, Some(11_051_210_869_376_104_954));
        assert_eq!(c.checksums.crc32.as_deref(), Some("9CR0Uw=="));
        let cos = user_metadata(&h, Dialect::Cos.meta_prefix());
        assert_eq!(
            cos.into_iter().collect::<Vec<_>>(),
            [("mtime".to_string(), "1700000000".to_string())]
        );
        assert_eq!(committed(&h, Some("\"x-2\"")).etag.as_deref(), Some("x-2"));
    }

    #[test]
    fn markers_must_move() {
        assert_eq!(
            next_marker("ListParts", None, Some("2".into())).unwrap(),
            "2"
        );
        assert!(next_marker("ListParts", Some("2"), Some("2".into())).is_err());
        assert!(next_marker("ListParts", Some("2"), None).is_err());
    }
}
