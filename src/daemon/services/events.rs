//! containerd.services.events.v1.Events: Publish (an event from a client, in the caller's
//! namespace), Forward (an envelope as it came, its timestamp kept), Subscribe (a stream of
//! every namespace's events matching containerd's filters on `topic`, `namespace` and
//! `event.*`, as `ctr events` reads them). A subscriber that goes away ends its stream task;
//! one too slow to keep up skips what it missed (a warning in the log), never stalling
//! publishers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use crate::api::services::events::v1::events_server::{Events, EventsServer};
use crate::api::services::events::v1::*;
use crate::api::types::Envelope;
use crate::daemon::context::Daemon;
use crate::daemon::events::Envelope as Published;
use crate::daemon::log;
use crate::errdefs::{err, ErrorKind};
use crate::metadata::encoding::validate_identifier;
use crate::metadata::filter::Filter;

pub struct EventsService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> EventsServer<EventsService> {
    super::limited!(EventsServer::new(EventsService { d: d.clone() }), d)
}

/// containerd's `validateTopic`: `/` then identifier components.
pub fn validate_topic(topic: &str) -> anyhow::Result<()> {
    let bad = |why: String| err(ErrorKind::InvalidArgument, why);
    if topic.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    let Some(rest) = topic.strip_prefix('/') else {
        return Err(bad("must start with '/'".into()));
    };
    if rest.is_empty() {
        return Err(bad("must have at least one component".into()));
    }
    for c in rest.split('/') {
        validate_identifier("topic component", c)
            .map_err(|e| bad(format!("failed validation on component {c:?}: {e:#}")))?;
    }
    Ok(())
}

fn validate_envelope(
    namespace: &str,
    topic: &str,
    event: Option<&prost_types::Any>,
) -> Result<(), Status> {
    validate_identifier("namespace", namespace).map_err(|e| {
        Status::invalid_argument(format!("event envelope has invalid namespace: {e:#}"))
    })?;
    validate_topic(topic)
        .map_err(|e| Status::invalid_argument(format!("envelope topic {topic:?}: {e:#}")))?;
    if event.is_none() {
        return Err(Status::invalid_argument("event must not be nil"));
    }
    Ok(())
}

fn envelope_out(e: &Published) -> Envelope {
    let nanos = crate::timefmt::to_unix_nanos(e.timestamp);
    Envelope {
        timestamp: Some(super::timestamp(nanos)),
        namespace: e.namespace.clone(),
        topic: e.topic.clone(),
        event: Some(e.event.clone()),
    }
}

/// The fields a subscription filter sees (containerd's envelope adaptor): `topic`,
/// `namespace`, and `event.*` inside the decoded event ([`crate::daemon::event_fields`]).
fn field(e: &Published, path: &[String]) -> Option<String> {
    match path {
        [f] if f == "topic" => Some(e.topic.clone()),
        [f] if f == "namespace" => Some(e.namespace.clone()),
        [f, rest @ ..] if f == "event" => crate::daemon::event_fields::field(&e.event, rest),
        _ => None,
    }
}

/// Subscribe's stream: envelopes from the task that follows the exchange.
pub struct EnvelopeStream(tokio::sync::mpsc::Receiver<Envelope>);

impl tonic::codegen::tokio_stream::Stream for EnvelopeStream {
    type Item = Result<Envelope, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|o| o.map(Ok))
    }
}

#[tonic::async_trait]
impl Events for EventsService {
    async fn publish(&self, r: Request<PublishRequest>) -> Result<Response<()>, Status> {
        let ns = crate::api::namespace::of(&r)?;
        let r = r.into_inner();
        validate_envelope(&ns, &r.topic, r.event.as_ref())?;
        if let Some(ev) = r.event {
            self.d.events.publish_any(&ns, &r.topic, ev);
        }
        Ok(Response::new(()))
    }

    async fn forward(&self, r: Request<ForwardRequest>) -> Result<Response<()>, Status> {
        let e = r
            .into_inner()
            .envelope
            .ok_or_else(|| Status::invalid_argument("envelope must not be nil"))?;
        validate_envelope(&e.namespace, &e.topic, e.event.as_ref())?;
        let timestamp = e
            .timestamp
            .and_then(|t| std::time::SystemTime::try_from(t).ok())
            .unwrap_or_else(std::time::SystemTime::now);
        if let Some(event) = e.event {
            self.d.events.forward(Published {
                timestamp,
                namespace: e.namespace,
                topic: e.topic,
                event,
            });
        }
        Ok(Response::new(()))
    }

    type SubscribeStream = EnvelopeStream;

    async fn subscribe(
        &self,
        r: Request<SubscribeRequest>,
    ) -> Result<Response<EnvelopeStream>, Status> {
        let filters = r.into_inner().filters;
        let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
        let filter = Filter::parse_all(&refs).map_err(|e| crate::api::status::to_status(&e))?;
        let mut rx = self.d.events.subscribe();
        // A small buffer: the subscriber's own backlog lives in the exchange's channel.
        let (tx, out) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let e = tokio::select! {
                    // The client went away (stream dropped): stop following.
                    _ = tx.closed() => return,
                    e = rx.recv() => e,
                };
                match e {
                    Ok(e) => {
                        if !filter.matches(&|p: &[String]| field(&e, p)) {
                            continue;
                        }
                        if tx.send(envelope_out(&e)).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        log::warn(&format!("event subscriber too slow: {n} events dropped"));
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(EnvelopeStream(out)))
    }
}
