//! The XML bodies of the requests this client sends and receives. Lenient on purpose: unknown elements are
//! ignored, the root's name and namespace are not checked (moto says `ListPartsResponse` where S3 and COS say
//! `ListPartsResult`; COS has no namespace), and optional elements default.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InitiateMultipartUploadResult {
    pub upload_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ListPartsResult {
    pub part: Vec<ListedPart>,
    pub is_truncated: bool,
    pub next_part_number_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListedPart {
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub size: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ListMultipartUploadsResult {
    pub upload: Vec<ListedUpload>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListedUpload {
    pub key: String,
    pub upload_id: String,
    #[serde(default)]
    pub initiated: Option<String>,
}

/// The answer to CompleteMultipartUpload, and to CopyObject / UploadPartCopy (`CopyObjectResult`,
/// `CopyPartResult`): all that is needed of them is the new ETag.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ETagResult {
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
    pub resource: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename = "CompleteMultipartUpload")]
pub(super) struct CompleteMultipartUpload {
    #[serde(rename = "Part")]
    pub parts: Vec<CompletedPart>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CompletedPart {
    pub part_number: u32,
    /// Quoted, as the store sent it.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// Reads `body` as `T`. COS streams whitespace before the result of a long CompleteMultipartUpload, so leading
/// whitespace is skipped.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, quick_xml::DeError> {
    let text = String::from_utf8_lossy(body);
    quick_xml::de::from_str(text.trim_start())
}

pub(super) fn serialize<T: Serialize>(value: &T) -> Result<String, quick_xml::SeError> {
    quick_xml::se::to_string(value)
}

/// The local name of the document's root element, if the body is XML at all.
pub(super) fn root_name(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return Some(e.local_name().into_inner().to_string())
            }
            Event::Eof => return None,
            Event::Text(t) if !t.trim().is_empty() => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// The `<Error>` document in `body`, when that is what it is (also inside a 200 answer).
pub(super) fn error_body(body: &[u8]) -> Option<ErrorBody> {
    if root_name(body).as_deref() != Some("Error") {
        return None;
    }
    Some(parse(body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initiate_result_with_and_without_namespace() {
        let s3 = br#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>dir/big.bin</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(
            parse::<InitiateMultipartUploadResult>(s3)
                .unwrap()
                .upload_id,
            "VXBsb2FkIElE"
        );
        let cos = b"<InitiateMultipartUploadResult><Bucket>b-125</Bucket><Key>k</Key><UploadId>1585130821cbb7df1d</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(
            parse::<InitiateMultipartUploadResult>(cos)
                .unwrap()
                .upload_id,
            "1585130821cbb7df1d"
        );
    }

    #[test]
    fn list_parts_as_moto_and_cos_answer() {
        // moto's root is ListPartsResponse; COS adds Encoding-type and Initiator/Owner blocks.
        let moto = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>1000</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"aa"</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>2</PartNumber><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"bb"</ETag><Size>17</Size></Part>
</ListPartsResponse>"#;
        let r: ListPartsResult = parse(moto).unwrap();
        assert!(r.is_truncated);
        assert_eq!(r.next_part_number_marker.as_deref(), Some("2"));
        let parts: Vec<_> = r
            .part
            .iter()
            .map(|p| (p.part_number, p.etag.as_str(), p.size))
            .collect();
        assert_eq!(parts, [(1, "\"aa\"", 5_242_880), (2, "\"bb\"", 17)]);

        let cos = br#"<ListPartsResult><Bucket>b-125</Bucket><Encoding-type/><Key>k</Key><UploadId>u</UploadId>
<Initiator><ID>qcs::cam::uin/1:uin/1</ID><DisplayName>1</DisplayName></Initiator>
<Owner><ID>qcs::cam::uin/1:uin/1</ID><DisplayName>1</DisplayName></Owner>
<PartNumberMarker>0</PartNumberMarker><Part><PartNumber>1</PartNumber><LastModified>Wed Mar 25 18:08:01 2020</LastModified><ETag>"cc"</ETag><Size>1048576</Size></Part>
<NextPartNumberMarker>1</NextPartNumberMarker><StorageClass>Standard</StorageClass><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated></ListPartsResult>"#;
        let r: ListPartsResult = parse(cos).unwrap();
        assert!(!r.is_truncated);
        assert_eq!(r.part.len(), 1);
        assert_eq!(r.part[0].size, 1_048_576);

        let empty = b"<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>";
        assert!(parse::<ListPartsResult>(empty).unwrap().part.is_empty());
    }

    #[test]
    fn list_uploads_with_common_prefixes_between_uploads() {
        let body = br#"<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
<NextKeyMarker>dir/b</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
<Prefix>dir/</Prefix><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
<Upload><Key>dir/a &amp; b</Key><UploadId>u1</UploadId><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>
<CommonPrefixes><Prefix>dir/sub/</Prefix></CommonPrefixes>
<Upload><Key>dir/b</Key><UploadId>u2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let r: ListMultipartUploadsResult = parse(body).unwrap();
        assert!(r.is_truncated);
        assert_eq!(r.next_key_marker.as_deref(), Some("dir/b"));
        assert_eq!(r.next_upload_id_marker.as_deref(), Some("u2"));
        let uploads: Vec<_> = r
            .upload
            .iter()
            .map(|u| (u.key.as_str(), u.upload_id.as_str()))
            .collect();
        assert_eq!(uploads, [("dir/a & b", "u1"), ("dir/b", "u2")]);
        assert_eq!(
            r.upload[0].initiated.as_deref(),
            Some("2010-11-10T20:48:33.000Z")
        );
        assert_eq!(r.upload[1].initiated, None);
    }

    #[test]
    fn complete_request_body() {
        let body = serialize(&CompleteMultipartUpload {
            parts: vec![
                CompletedPart {
                    part_number: 1,
                    etag: "\"aa\"".into(),
                },
                CompletedPart {
                    part_number: 2,
                    etag: "\"bb\"".into(),
                },
            ],
        })
        .unwrap();
        assert!(
            body.starts_with("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"),
            "{body}"
        );
        // Whatever the quoting of the quotes, a reader gets them back.
        let again = body.replace("CompleteMultipartUpload", "R");
        #[derive(Deserialize)]
        struct R {
            #[serde(rename = "Part")]
            parts: Vec<P>,
        }
        #[derive(Deserialize)]
        struct P {
            #[serde(rename = "ETag")]
            etag: String,
        }
        let r: R = quick_xml::de::from_str(&again).unwrap();
        assert_eq!(r.parts[1].etag, "\"bb\"");
    }

    #[test]
    fn complete_result_after_cos_keep_alive_whitespace() {
        let body = b"\n \n  \n<?xml version='1.0' encoding='utf-8' ?>\n<CompleteMultipartUploadResult><Location>b-125.cos.ap-guangzhou.myqcloud.com/k</Location><Bucket>b-125</Bucket><Key>k</Key><ETag>&quot;5e8c-2&quot;</ETag></CompleteMultipartUploadResult>";
        assert_eq!(
            root_name(body).as_deref(),
            Some("CompleteMultipartUploadResult")
        );
        assert!(error_body(body).is_none());
        assert_eq!(
            parse::<ETagResult>(body).unwrap().etag.as_deref(),
            Some("\"5e8c-2\"")
        );
    }

    #[test]
    fn error_documents_are_recognised_also_after_whitespace() {
        let body = b"  \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>656c76696e6727732072657175657374</RequestId></Error>";
        let e = error_body(body).unwrap();
        assert_eq!(e.code.as_deref(), Some("InternalError"));
        assert_eq!(
            e.request_id.as_deref(),
            Some("656c76696e6727732072657175657374")
        );
        assert_eq!(
            error_body(b"<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>"),
            None
        );
        assert_eq!(error_body(b""), None);
        assert_eq!(error_body(b"not xml <Error>"), None);
    }
}
