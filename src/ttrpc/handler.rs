//! What a served method is: a [`Handler`] gets the request's payload and a [`Responder`]
//! and answers through it, now or later. Most methods answer before they return
//! ([`unary`]); a method that waits for something (the task API's Wait) keeps the
//! responder and answers when the thing happens ([`deferred`]), so no thread is held while
//! it waits.
//!
//! A payload that does not decode as the method's request message is answered with an
//! error status and the connection goes on: INTERNAL, "ttrpc: error unmarshalling payload:
//! …", what containerd-shim-runc-v2 1.6 answers (measured; Go's ttrpc wraps the decode
//! error that way). A request envelope that does not decode is the server's
//! INVALID_ARGUMENT.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use containerd_shim_protos::ttrpc::proto::{Code, Response};
use containerd_shim_protos::ttrpc::{self, get_status};
use protobuf::Message;

/// Where an answer goes: the server's outbox, for one request of one connection.
pub trait Sink: Send + Sync {
    /// Queues the whole response frame for connection `conn`.
    fn send(&self, conn: u64, frame: Vec<u8>);
}

/// The right to answer one request, once.
pub struct Responder {
    pub(super) conn: u64,
    pub(super) stream_id: u32,
    pub(super) sink: Arc<dyn Sink>,
    /// False once the connection is closed: nobody is waiting for the answer any more.
    pub(super) open: Arc<AtomicBool>,
}

impl Responder {
    /// Whether the client can still receive the answer (its connection is open).
    pub fn is_wanted(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Answers with the encoded reply message or the error's status (errors that are not
    /// statuses are UNKNOWN, as the ttrpc crate's handlers answer them).
    pub fn answer(self, r: ttrpc::Result<Vec<u8>>) {
        let mut res = Response::new();
        match r {
            Ok(payload) => {
                res.set_status(get_status(Code::OK, ""));
                res.payload = payload;
            }
            Err(ttrpc::Error::RpcStatus(s)) => res.set_status(s),
            Err(e) => res.set_status(get_status(Code::UNKNOWN, format!("{e:?}"))),
        }
        let frame = super::frames::response_frame(self.stream_id, &res);
        self.sink.send(self.conn, frame);
    }
}

/// One request: the payload (the method's request message, encoded) and who to answer.
pub struct Call {
    pub payload: Vec<u8>,
    pub reply: Responder,
}

/// A served method.
pub type Handler = Arc<dyn Fn(Call) + Send + Sync>;

/// The served methods by `/service/method` path.
pub type Methods = HashMap<String, Handler>;

fn invalid_payload(e: protobuf::Error) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(get_status(
        Code::INTERNAL,
        format!("ttrpc: error unmarshalling payload: {e}"),
    ))
}

fn encode<M: Message>(m: M) -> ttrpc::Result<Vec<u8>> {
    m.write_to_bytes().map_err(|e| {
        ttrpc::Error::RpcStatus(get_status(Code::INTERNAL, format!("marshal reply: {e}")))
    })
}

/// A method that answers before it returns.
pub fn unary<Req, Resp, F>(f: F) -> Handler
where
    Req: Message,
    Resp: Message,
    F: Fn(Req) -> ttrpc::Result<Resp> + Send + Sync + 'static,
{
    Arc::new(move |call: Call| {
        let r = match Req::parse_from_bytes(&call.payload) {
            Ok(req) => f(req).and_then(encode),
            Err(e) => Err(invalid_payload(e)),
        };
        call.reply.answer(r);
    })
}

/// Answers a deferred method later, with its reply message or an error.
pub struct Reply<Resp> {
    inner: Responder,
    _t: std::marker::PhantomData<fn(Resp)>,
}

impl<Resp: Message> Reply<Resp> {
    /// Whether the client can still receive the answer (a parked reply whose connection
    /// closed can be dropped).
    pub fn is_wanted(&self) -> bool {
        self.inner.is_wanted()
    }

    pub fn send(self, r: ttrpc::Result<Resp>) {
        self.inner.answer(r.and_then(encode));
    }
}

/// A method that may answer after it returns, through the [`Reply`] it is given.
pub fn deferred<Req, Resp, F>(f: F) -> Handler
where
    Req: Message,
    Resp: Message,
    F: Fn(Req, Reply<Resp>) + Send + Sync + 'static,
{
    Arc::new(
        move |call: Call| match Req::parse_from_bytes(&call.payload) {
            Ok(req) => f(
                req,
                Reply {
                    inner: call.reply,
                    _t: std::marker::PhantomData,
                },
            ),
            Err(e) => call.reply.answer(Err(invalid_payload(e))),
        },
    )
}

/// Wraps every method so `hook` runs once each request was handed its answer (or, for a
/// deferred one, once its handler returned).
pub fn after_each_request(methods: Methods, hook: impl Fn() + Send + Sync + 'static) -> Methods {
    let hook: Arc<dyn Fn() + Send + Sync> = Arc::new(hook);
    methods
        .into_iter()
        .map(|(name, inner)| {
            let hook = hook.clone();
            let h: Handler = Arc::new(move |call: Call| {
                inner(call);
                hook();
            });
            (name, h)
        })
        .collect()
}
