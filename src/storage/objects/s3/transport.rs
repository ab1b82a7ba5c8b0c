//! Sending one S3/COS request: fault check, signing, the HTTP exchange under the progress watchdog, the answer
//! read in full, errors mapped, temporary failures retried (see [`super::retry`]).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use backon::Retryable;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use opendal::{Error, ErrorKind};
use tracing::{debug, warn};

use super::error::{self, Retry};
use super::retry::{Liveness, RetryPolicy, Stalled};
use super::sign::StoreSigner;
use crate::storage::metrics;
use crate::storage::objects::faults::FaultHook;
use crate::storage::silence::Silent;
use crate::storage::StoreHealth;

/// Bodies are handed to the connection in slices of this size, each a sign of progress.
const UPLOAD_SLICE: usize = 64 * 1024;
/// Answers are XML documents of at most a few hundred KiB (1,000 parts); anything far larger is not one.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// How long the store may think before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// Answers come at once.
    Prompt,
    /// The server works before (or while) answering: CompleteMultipartUpload, CopyObject, UploadPartCopy.
    ServerWork,
}

/// One request, ready but for signing.
#[derive(Debug)]
pub(super) struct Request {
    /// The S3 operation's name, for errors and logs.
    pub op: &'static str,
    pub method: Method,
    /// Wire-ready: key and query values percent-encoded once.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub wait: Wait,
    /// The answer may be 200 with an `<Error>` document (CompleteMultipartUpload and copies).
    pub error_in_ok_body: bool,
}

impl Request {
    pub(super) fn new(op: &'static str, method: Method, url: String) -> Self {
        Request {
            op,
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            wait: Wait::Prompt,
            error_in_ok_body: false,
        }
    }

    fn query(&self) -> &str {
        self.url.split_once('?').map(|(_, q)| q).unwrap_or("")
    }
}

/// A successful answer, read in full.
#[derive(Debug)]
pub(super) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub(super) struct Transport {
    client: reqwest::Client,
    signer: StoreSigner,
    faults: FaultHook,
    policy: RetryPolicy,
    /// Told of temporary failures, so that the store's health is probed at once.
    health: StoreHealth,
}

impl Transport {
    pub(super) fn new(
        client: reqwest::Client,
        signer: StoreSigner,
        faults: FaultHook,
        policy: RetryPolicy,
        health: StoreHealth,
    ) -> Self {
        Transport {
            client,
            signer,
            faults,
            policy,
            health,
        }
    }

    pub(super) async fn send(&self, req: &Request) -> opendal::Result<Response> {
        self.send_counted(req).await.0
    }

    /// Sends `req`, retrying temporary failures; also says how many attempts were made (an error after more
    /// than one may hide an earlier attempt that succeeded without its answer arriving).
    pub(super) async fn send_counted(&self, req: &Request) -> (opendal::Result<Response>, u32) {
        let live = Arc::new(Liveness::new(self.health.silence().clone()));
        let attempts = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(req, &live)
        })
        .retry(self.policy.backoff())
        // While the store is silent another attempt would only be refused.
        .when(|e: &Error| e.is_temporary() && !self.health.silence().is_silent())
        .adjust(|_, delay| delay.filter(|d| self.policy.may_retry(live.idle(), *d)))
        .notify(|e, delay| {
            warn!(op = req.op, error = %e, ?delay, "store request failed; retrying");
            metrics::retry("objects", req.op);
            self.health.probe_soon();
        })
        .await;
        metrics::objects_request(
            req.op,
            result.as_ref().map(|_| ()).map_err(Error::kind),
            started.elapsed(),
        );
        if result.as_ref().is_err_and(Error::is_temporary) {
            self.health.probe_soon();
        }
        let attempts = attempts.into_inner();
        let result = result.map_err(|e| {
            if attempts > 1 {
                e.with_context("attempts", attempts)
            } else {
                e
            }
        });
        (result, attempts)
    }

    async fn attempt(&self, req: &Request, live: &Arc<Liveness>) -> opendal::Result<Response> {
        self.faults.check(req.method.as_str(), req.query())?;
        // A store working on a copy or a completion may take its time without being silent to others: such a
        // request is refused while the store is silent, but is not on the store's clock.
        let silence = self.health.silence();
        let on_clock = match req.wait {
            Wait::Prompt => silence.before_send().map(Some),
            Wait::ServerWork => silence.before_long_request().map(|()| None),
        }
        .map_err(|silent| {
            self.health.probe_soon();
            silent_error(req.op, silent)
        })?;

        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(&req.url);
        if let Some(headers) = builder.headers_mut() {
            headers.extend(req.headers.clone());
            // Also 0 for an empty POST/PUT: S3 refuses a body of unknown length.
            headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(req.body.len()),
            );
        }
        let (mut parts, ()) = builder
            .body(())
            .map_err(|e| {
                error::invalid(req.op, ErrorKind::Unexpected, format!("bad request: {e}"))
            })?
            .into_parts();
        self.signer
            .sign(&mut parts)
            .await
            .map_err(|e| error::signing(req.op, e))?;
        let body = self
            .faults
            .deliver(req.method.as_str(), req.query(), req.body.clone());
        let body = progress_body(body, live);
        let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
            .map_err(|e| error::transport(req.op, e))?;

        let stall = match req.wait {
            Wait::Prompt => self.policy.stall_timeout,
            Wait::ServerWork => self.policy.server_work_timeout,
        };
        // A large body is stored and hashed before the answer: the store works as for a copy.
        let after_body = if req.body.len() > UPLOAD_SLICE {
            self.policy.server_work_timeout
        } else {
            stall
        };
        live.begin_attempt();
        let exchange = async {
            let mut response = self
                .client
                .execute(request)
                .await
                .map_err(|e| error::transport(req.op, e))?;
            live.touch();
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let mut body = BytesMut::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| error::transport(req.op, e))?
            {
                live.touch();
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(error::bad_answer(
                        req.op,
                        format!("an answer over {MAX_ANSWER} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body: body.freeze(),
            })
        };
        let response = match live
            .watch(
                stall,
                after_body,
                self.policy.budget,
                on_clock.as_ref(),
                exchange,
            )
            .await
        {
            Ok(result) => result?,
            Err(stalled) => return Err(stall_error(req.op, stalled)),
        };
        debug!(op = req.op, method = %req.method, status = response.status.as_u16(), "store answered");

        if !response.status.is_success() {
            return Err(error::from_response(
                req.op,
                response.status,
                &response.headers,
                &response.body,
            ));
        }
        if req.error_in_ok_body {
            if let Some(err) = error::embedded(req.op, &response.headers, &response.body) {
                return Err(err);
            }
        }
        Ok(response)
    }
}

/// The request body, sliced so that each slice the connection takes counts as progress.
fn progress_body(body: Bytes, live: &Arc<Liveness>) -> reqwest::Body {
    if body.len() <= UPLOAD_SLICE {
        return reqwest::Body::from(body);
    }
    let slices: Vec<Bytes> = (0..body.len())
        .step_by(UPLOAD_SLICE)
        .map(|start| body.slice(start..(start + UPLOAD_SLICE).min(body.len())))
        .collect();
    let last = slices.len() - 1;
    let live = Arc::clone(live);
    reqwest::Body::wrap_stream(futures::stream::iter(slices.into_iter().enumerate().map(
        move |(i, slice)| {
            if i == last {
                live.body_sent();
            } else {
                live.touch();
            }
            Ok::<Bytes, std::io::Error>(slice)
        },
    )))
}

/// The store has been silent to every request for its budget: a temporary failure like any stall (a start-up
/// check reports the store unreachable), but not retried while the silence lasts (see `send_counted`).
fn silent_error(op: &'static str, silent: Silent) -> Error {
    error::with_retry(
        Error::new(ErrorKind::Unexpected, silent.to_string()).with_operation(op),
        Retry::Temporary,
    )
}

fn stall_error(op: &'static str, stalled: Stalled) -> Error {
    let what = match stalled {
        Stalled::NoProgress(d) => format!("{op}: the store made no progress for {d:?}"),
        Stalled::OutOfBudget(d) => format!("{op}: the store has not answered for {d:?}"),
        Stalled::StoreSilent(silent) => return silent_error(op, silent),
    };
    error::with_retry(
        Error::new(ErrorKind::Unexpected, what).with_operation(op),
        Retry::Temporary,
    )
}
