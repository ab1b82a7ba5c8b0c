//! `metrics_address`: the Prometheus recorder behind the `metrics` facade every room records through, and a small
//! HTTP server for `GET /metrics` and `GET /healthz`.
//!
//! Without `metrics_address` no recorder is installed and every recording call in the rooms is a no-op.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::bucketfs::{self, MemoryBudget};
use crate::storage::{self, StoreHealth, StoreStatus};

const BUILD_INFO: &str = "cosftpd_build_info";
const RELOADS: &str = "cosftpd_config_reloads_total";
const LAST_RELOAD_OK: &str = "cosftpd_config_last_reload_successful";
/// Histograms are folded into their buckets this often (and at every scrape).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("metrics: {0}")]
    Recorder(String),
    #[error("metrics_address {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Installs the process-wide Prometheus recorder and describes every metric.
pub fn install_recorder() -> Result<PrometheusHandle, TelemetryError> {
    // Durations as histograms (aggregatable across gateways): ours and OpenDAL's (`opendal_*_duration_seconds`,
    // `opendal_operation_ttfb_seconds`). OpenDAL's sizes and rates stay summaries, the exporter's default.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("duration_seconds".into()),
            storage::metrics::DURATION_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Suffix("ttfb_seconds".into()),
                storage::metrics::DURATION_BUCKETS,
            )
        })
        .map_err(|e| TelemetryError::Recorder(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| TelemetryError::Recorder(e.to_string()))?;
    describe();
    gauge!(BUILD_INFO, "version" => crate::VERSION).set(1.0);
    Ok(handle)
}

fn describe() {
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label names the running build"
    );
    describe_counter!(RELOADS, "Config reloads (SIGHUP), by result (ok, refused)");
    describe_gauge!(
        LAST_RELOAD_OK,
        "1 when the last reload was applied, 0 when it was refused (the config file on disk is not the one running)"
    );
    crate::ftp::metrics::describe();
    crate::fuse::metrics::describe();
    storage::metrics::describe();
    bucketfs::metrics::describe();
}

/// Counts a reload (SIGHUP) and whether it was applied.
pub fn reload_done(applied: bool) {
    counter!(RELOADS, "result" => if applied { "ok" } else { "refused" }).increment(1);
    gauge!(LAST_RELOAD_OK).set(if applied { 1.0 } else { 0.0 });
}

/// What the endpoint reads at each request: the accounts' store health (replaced on reload) and the budget.
#[derive(Clone)]
pub struct Scrape {
    pub prometheus: PrometheusHandle,
    pub stores: Arc<Mutex<Vec<StoreHealth>>>,
    pub budget: MemoryBudget,
}

impl Scrape {
    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics or /healthz\n");
        }
        match req.uri().path() {
            "/metrics" => {
                bucketfs::metrics::sample_budget(&self.budget);
                self.prometheus.run_upkeep();
                let mut response = text(StatusCode::OK, self.prometheus.render());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            "/healthz" => self.health(),
            _ => text(StatusCode::NOT_FOUND, "GET /metrics or /healthz\n"),
        }
    }

    /// 200 when every account's store answered its last probe; 503 otherwise. The body has one line per account.
    fn health(&self) -> Response<Full<Bytes>> {
        let stores = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut healthy = true;
        let mut body = String::new();
        for store in &stores {
            let line = match store.status().0 {
                StoreStatus::Up => "up".to_string(),
                StoreStatus::Unknown => {
                    healthy = false;
                    "not checked yet".to_string()
                }
                StoreStatus::Down(why) => {
                    healthy = false;
                    format!("down: {why}")
                }
            };
            body.push_str(&format!("{}: {line}\n", store.user()));
        }
        let status = if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        text(status, body)
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// Binds `addr` and serves until the task is aborted.
pub async fn serve(addr: SocketAddr, scrape: Scrape) -> Result<JoinHandle<()>, TelemetryError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    info!(addr = %bound, "metrics listening (GET /metrics, GET /healthz)");
    let upkeep = scrape.prometheus.clone();
    Ok(tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let scrape = scrape.clone();
                        connections.spawn(async move {
                            let service = service_fn(move |req| {
                                let response = scrape.answer(&req);
                                async move { Ok::<_, Infallible>(response) }
                            });
                            if let Err(e) = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                            {
                                debug!(%peer, error = %e, "metrics connection ended with an error");
                            }
                        });
                    }
                    Err(e) => {
                        debug!(error = %e, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = interval.tick() => upkeep.run_upkeep(),
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }))
}
