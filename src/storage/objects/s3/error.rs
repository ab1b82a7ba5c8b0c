//! The store's answers as `opendal::Error`s: the error code in the body decides where there is one, the status
//! otherwise. `temporary` marks what a retry may fix (throttling, server errors, transport failures); the rest
//! is permanent and never retried.

use http::{HeaderMap, StatusCode};
use opendal::{Error, ErrorKind};

use super::xml::{self, ErrorBody};

/// Whether a retry may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    Temporary,
    Permanent,
}

/// The kind for a store error: by its code when it has one, else by the HTTP status (`None`: an error inside
/// a 200 answer).
pub(super) fn classify(status: Option<StatusCode>, code: Option<&str>) -> (ErrorKind, Retry) {
    use ErrorKind as K;
    use Retry::*;
    if let Some(code) = code {
        let by_code = match code {
            "NoSuchKey" | "NoSuchUpload" | "NoSuchVersion" => Some((K::NotFound, Permanent)),
            // OpenDAL files a missing bucket under ConfigInvalid too; `storage::classify` finds the code.
            "NoSuchBucket" => Some((K::ConfigInvalid, Permanent)),
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidSecretId"
            | "RequestTimeTooSkewed"
            | "ExpiredToken"
            | "InvalidToken"
            | "AllAccessDisabled"
            | "AccountProblem" => Some((K::PermissionDenied, Permanent)),
            // S3's If-None-Match failure, and COS's answer to x-cos-forbid-overwrite.
            "PreconditionFailed" | "FileAlreadyExists" => Some((K::ConditionNotMatch, Permanent)),
            // Another conditional write to the key is in flight (S3): the upload must start over.
            "ConditionalRequestConflict" | "PathConflict" => Some((K::Conflict, Permanent)),
            "OperationAborted" => Some((K::Conflict, Temporary)),
            "SlowDown"
            | "TooManyRequests"
            | "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ServiceUnavailable" => Some((K::RateLimited, Temporary)),
            "InternalError" | "RequestTimeout" | "IncompleteBody" => {
                Some((K::Unexpected, Temporary))
            }
            "NotImplemented" => Some((K::Unsupported, Permanent)),
            "InvalidRange" => Some((K::RangeNotSatisfied, Permanent)),
            _ => None,
        };
        if let Some(found) = by_code {
            return found;
        }
    }
    match status {
        // An unknown code inside a 200 answer: the store failed while working (CompleteMultipartUpload and
        // copies report errors that way), and both are safe to send again.
        None => (K::Unexpected, Temporary),
        Some(s) => match s.as_u16() {
            404 => (K::NotFound, Permanent),
            401 | 403 => (K::PermissionDenied, Permanent),
            409 => (K::Conflict, Permanent),
            412 => (K::ConditionNotMatch, Permanent),
            416 => (K::RangeNotSatisfied, Permanent),
            408 => (K::Unexpected, Temporary),
            429 | 503 => (K::RateLimited, Temporary),
            501 => (K::Unsupported, Permanent),
            500..=599 => (K::Unexpected, Temporary),
            _ => (K::Unexpected, Permanent),
        },
    }
}

/// An error answer (status ≥ 300), with the `<Error>` body if it has one (HEAD answers have none).
pub(super) fn from_response(
    op: &'static str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let parsed = xml::error_body(body).unwrap_or_default();
    let request_id = parsed.request_id.clone().or_else(|| request_id(headers));
    build(op, Some(status), parsed, request_id)
}

/// The `<Error>` a 200 answer may carry (CompleteMultipartUpload, CopyObject, UploadPartCopy).
pub(super) fn embedded(op: &'static str, headers: &HeaderMap, body: &[u8]) -> Option<Error> {
    let parsed = xml::error_body(body)?;
    let request_id = parsed.request_id.clone().or_else(|| request_id(headers));
    Some(build(op, None, parsed, request_id))
}

fn build(
    op: &'static str,
    status: Option<StatusCode>,
    body: ErrorBody,
    request_id: Option<String>,
) -> Error {
    let (kind, retry) = classify(status, body.code.as_deref());
    let status_text = match status {
        Some(s) => s.as_u16().to_string(),
        None => "200 with an error body".to_string(),
    };
    let mut message = format!("{op}: HTTP {status_text}");
    if let Some(code) = &body.code {
        message.push_str(": ");
        message.push_str(code);
    }
    if let Some(text) = &body.message {
        message.push_str(": ");
        message.push_str(text);
    }
    let mut err = Error::new(kind, message).with_operation(op);
    if let Some(id) = request_id {
        err = err.with_context("request_id", id);
    }
    if let Some(resource) = body.resource {
        err = err.with_context("resource", resource);
    }
    with_retry(err, retry)
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-amz-request-id", "x-cos-request-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(super) fn with_retry(err: Error, retry: Retry) -> Error {
    match retry {
        Retry::Temporary => err.set_temporary(),
        Retry::Permanent => err.set_permanent(),
    }
}

/// The request never got an answer: connection refused or reset, timeout, broken body. All temporary but a
/// request that could not be built.
pub(super) fn transport(op: &'static str, err: reqwest::Error) -> Error {
    let retry = if err.is_builder() {
        Retry::Permanent
    } else {
        Retry::Temporary
    };
    let what = if err.is_connect() {
        "cannot connect to the store"
    } else if err.is_timeout() {
        "the store timed out"
    } else {
        "the request to the store failed"
    };
    with_retry(
        Error::new(ErrorKind::Unexpected, format!("{op}: {what}"))
            .with_operation(op)
            .set_source(err),
        retry,
    )
}

pub(super) fn signing(op: &'static str, err: reqsign_core::Error) -> Error {
    use reqsign_core::ErrorKind as S;
    let kind = match err.kind() {
        S::CredentialInvalid | S::PermissionDenied => ErrorKind::PermissionDenied,
        S::ConfigInvalid | S::RequestInvalid => ErrorKind::ConfigInvalid,
        _ => ErrorKind::Unexpected,
    };
    let retry = if err.is_retryable() {
        Retry::Temporary
    } else {
        Retry::Permanent
    };
    with_retry(
        Error::new(kind, format!("{op}: cannot sign the request"))
            .with_operation(op)
            .set_source(err),
        retry,
    )
}

/// The store answered success with something this client cannot use (no ETag, unreadable XML).
pub(super) fn bad_answer(op: &'static str, what: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("{op}: unexpected answer: {}", what.into()),
    )
    .with_operation(op)
    .set_permanent()
}

/// A request refused before it was sent (bad metadata, part number out of range, empty copy range).
pub(super) fn invalid(op: &'static str, kind: ErrorKind, what: impl Into<String>) -> Error {
    Error::new(kind, format!("{op}: {}", what.into()))
        .with_operation(op)
        .set_permanent()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(status: u16, body: &str) -> (ErrorKind, bool) {
        let e = from_response(
            "Op",
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        );
        (e.kind(), e.is_temporary())
    }

    fn doc(code: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>m</Message><RequestId>r1</RequestId></Error>")
    }

    #[test]
    fn codes_decide_before_statuses() {
        use ErrorKind as K;
        let cases = [
            (404, "NoSuchKey", K::NotFound, false),
            (404, "NoSuchUpload", K::NotFound, false),
            (404, "NoSuchBucket", K::ConfigInvalid, false),
            (403, "AccessDenied", K::PermissionDenied, false),
            (403, "InvalidAccessKeyId", K::PermissionDenied, false),
            (403, "SignatureDoesNotMatch", K::PermissionDenied, false),
            (412, "PreconditionFailed", K::ConditionNotMatch, false),
            (409, "FileAlreadyExists", K::ConditionNotMatch, false),
            (409, "ConditionalRequestConflict", K::Conflict, false),
            (503, "SlowDown", K::RateLimited, true),
            (400, "RequestTimeout", K::Unexpected, true),
            (500, "InternalError", K::Unexpected, true),
            (501, "NotImplemented", K::Unsupported, false),
            (400, "EntityTooSmall", K::Unexpected, false),
            (400, "InvalidPart", K::Unexpected, false),
            (400, "InvalidRequest", K::Unexpected, false),
        ];
        for (status, code, kind, temporary) in cases {
            assert_eq!(
                kind_of(status, &doc(code)),
                (kind, temporary),
                "{status} {code}"
            );
        }
    }

    #[test]
    fn statuses_decide_without_a_body() {
        use ErrorKind as K;
        let cases = [
            (404, K::NotFound, false),
            (403, K::PermissionDenied, false),
            (412, K::ConditionNotMatch, false),
            (409, K::Conflict, false),
            (416, K::RangeNotSatisfied, false),
            (429, K::RateLimited, true),
            (503, K::RateLimited, true),
            (500, K::Unexpected, true),
            (502, K::Unexpected, true),
            (400, K::Unexpected, false),
            (405, K::Unexpected, false),
        ];
        for (status, kind, temporary) in cases {
            assert_eq!(kind_of(status, ""), (kind, temporary), "{status}");
        }
        // An HTML page from a proxy is no error document: the status decides.
        assert_eq!(
            kind_of(502, "<html><body>Bad Gateway</body></html>"),
            (K::Unexpected, true)
        );
    }

    #[test]
    fn message_names_operation_code_and_request_id() {
        let e = from_response(
            "PutObject",
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            doc("FileAlreadyExists").as_bytes(),
        );
        let text = e.to_string();
        assert!(text.contains("PutObject"), "{text}");
        assert!(text.contains("FileAlreadyExists"), "{text}");
        assert!(text.contains("r1"), "{text}");
    }

    #[test]
    fn errors_inside_200_answers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-cos-request-id", "NjU2".parse().unwrap());
        // COS: keep-alive whitespace, then the error in the last chunk; no RequestId in the body.
        let body = "\n  \n  <?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>InternalError</Code><Message>merge failed</Message></Error>";
        let e = embedded("CompleteMultipartUpload", &headers, body.as_bytes()).unwrap();
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        assert!(e.is_temporary());
        assert!(e.to_string().contains("NjU2"), "{e}");

        let body = "<Error><Code>SlowDown</Code></Error>";
        let e = embedded("CopyObject", &headers, body.as_bytes()).unwrap();
        assert_eq!((e.kind(), e.is_temporary()), (ErrorKind::RateLimited, true));

        let body = "<Error><Code>AccessDenied</Code></Error>";
        let e = embedded("UploadPartCopy", &headers, body.as_bytes()).unwrap();
        assert_eq!(
            (e.kind(), e.is_temporary()),
            (ErrorKind::PermissionDenied, false)
        );

        let body = "<Error><Code>SomethingNew</Code></Error>";
        let e = embedded("CopyObject", &headers, body.as_bytes()).unwrap();
        assert_eq!((e.kind(), e.is_temporary()), (ErrorKind::Unexpected, true));

        let ok =
            "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag></CompleteMultipartUploadResult>";
        assert!(embedded("CompleteMultipartUpload", &headers, ok.as_bytes()).is_none());
    }
}
