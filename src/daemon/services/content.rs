//! containerd.services.content.v1.Content over the namespaced content store
//! (`metadata::namespaced_content`): what `ctr content …` and every client-side pull use.
//!
//! Write is containerd's bidirectional session (services/content/contentserver): the first
//! message names the ingest ref (and may declare total and expected digest), which opens —
//! or resumes — the ingest and holds its lock for the session; then each message is a STAT
//! (report offset, total, digest so far), a WRITE (data at the current offset; offset 0 on
//! a non-empty ingest truncates it) or a COMMIT (a last write, then verify size and digest
//! and make the blob, with the message's labels). The `containerd-lease` header leases the
//! ingest and then the blob. A client that goes away mid-session leaves the ingest on disk
//! with what it wrote, resumable by the next Write of that ref; a commit whose digest or
//! size is wrong makes no blob.

use std::io::Write as _;
use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use crate::api::events::{ContentCreate, ContentDelete};
use crate::api::namespace;
use crate::api::services::content::v1::content_server::{Content, ContentServer};
use crate::api::services::content::v1::{
    AbortRequest, DeleteContentRequest, Info, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest, UpdateResponse, WriteAction,
    WriteContentRequest, WriteContentResponse,
};
use crate::api::status::to_status;
use crate::content::{Digest, Writer};
use crate::daemon::context::Daemon;
use crate::daemon::services::convert::{digest, labels_in, labels_out, timestamp, timestamp_nanos};
use crate::daemon::services::plumbing::{blocking, lease_of, ChannelStream};
use crate::metadata::content::ContentRecord;
use crate::metadata::namespaced_content::NamespacedContent;

/// containerd's read chunk (its buffer pool's 1 MiB).
const READ_CHUNK: usize = 1 << 20;
/// Infos per List message, as containerd batches them.
const LIST_BATCH: usize = 100;

pub struct ContentService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> ContentServer<ContentService> {
    ContentServer::new(ContentService { d: d.clone() })
        .max_decoding_message_size(crate::api::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(crate::api::MAX_MESSAGE_SIZE)
}

/// The namespace's content store, under `lease` for what is written.
fn store<'a>(d: &'a Daemon, ns: &str, lease: Option<String>) -> NamespacedContent<'a> {
    NamespacedContent {
        db: &d.db,
        store: &d.content,
        ns: ns.to_owned(),
        lease,
    }
}

fn info_out(r: &ContentRecord) -> Info {
    Info {
        digest: r.digest.to_string(),
        size: r.size as i64,
        created_at: Some(timestamp_nanos(r.created_at)),
        updated_at: Some(timestamp_nanos(r.updated_at)),
        labels: labels_out(&r.labels),
    }
}

fn status_out(s: &crate::content::Status) -> crate::api::services::content::v1::Status {
    crate::api::services::content::v1::Status {
        started_at: Some(timestamp(s.started_at)),
        updated_at: Some(timestamp(s.updated_at)),
        r#ref: s.ref_.clone(),
        offset: s.offset as i64,
        total: s.total as i64,
        expected: String::new(),
    }
}

#[tonic::async_trait]
impl Content for ContentService {
    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let dg = req.into_inner().digest;
        let rec = blocking(move || {
            let dg = digest(&dg)?;
            store(&d, &ns, None).info(&dg)
        })
        .await?;
        Ok(Response::new(InfoResponse {
            info: Some(info_out(&rec)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let req = req.into_inner();
        let info = req.info.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let rec = blocking(move || {
            let dg = digest(&info.digest)?;
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            store(&d, &ns, None).update(&dg, &labels_in(&info.labels), &paths)
        })
        .await?;
        Ok(Response::new(UpdateResponse {
            info: Some(info_out(&rec)),
        }))
    }

    type ListStream = ChannelStream<ListContentResponse>;

    async fn list(
        &self,
        req: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let filters = req.into_inner().filters;
        let recs = blocking(move || {
            let f: Vec<&str> = filters.iter().map(String::as_str).collect();
            store(&d, &ns, None).walk(&f)
        })
        .await?;
        let batches = recs
            .chunks(LIST_BATCH)
            .map(|c| ListContentResponse {
                // containerd's List leaves UpdatedAt out.
                info: c
                    .iter()
                    .map(|r| Info {
                        updated_at: None,
                        ..info_out(r)
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(ChannelStream::of(batches)))
    }

    async fn delete(&self, req: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let dg = req.into_inner().digest;
        blocking(move || {
            let dg = digest(&dg)?;
            store(&d, &ns, None).delete(&dg)?;
            d.events.publish(
                &ns,
                "/content/delete",
                &ContentDelete {
                    digest: dg.to_string(),
                },
            );
            Ok(())
        })
        .await?;
        self.d.gc.schedule();
        Ok(Response::new(()))
    }

    type ReadStream = ChannelStream<ReadContentResponse>;

    async fn read(
        &self,
        req: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let req = req.into_inner();
        let reader = blocking(move || {
            let dg = digest(&req.digest)?;
            store(&d, &ns, None).reader(&dg)
        })
        .await?;
        let size = reader.size() as i64;
        let offset = req.offset.max(0);
        if offset > size {
            return Err(Status::out_of_range(format!(
                "read past object length {size} bytes"
            )));
        }
        let len = if req.size <= 0 || offset.saturating_add(req.size) > size {
            size - offset
        } else {
            req.size
        };
        let (tx, stream) = ChannelStream::new(4);
        tokio::task::spawn_blocking(move || {
            let mut pos = offset as u64;
            let end = (offset + len) as u64;
            while pos < end {
                let n = ((end - pos) as usize).min(READ_CHUNK);
                let mut buf = vec![0u8; n];
                let got = match reader.read_at(&mut buf, pos) {
                    Ok(0) => break,
                    Ok(g) => g,
                    Err(e) => {
                        let _ =
                            tx.blocking_send(Err(Status::unknown(format!("read content: {e}"))));
                        return;
                    }
                };
                buf.truncate(got);
                let msg = ReadContentResponse {
                    offset: pos as i64,
                    data: buf,
                };
                if tx.blocking_send(Ok(msg)).is_err() {
                    return; // the client went away
                }
                pos += got as u64;
            }
        });
        Ok(Response::new(stream))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner().r#ref;
        let s = blocking(move || {
            store(&d, &ns, None)
                .status(&r)
                .map_err(|e| e.context(format!("could not get status for ref {r:?}")))
        })
        .await?;
        Ok(Response::new(StatusResponse {
            status: Some(status_out(&s)),
        }))
    }

    async fn list_statuses(
        &self,
        req: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let filters = req.into_inner().filters;
        let st = blocking(move || {
            let f: Vec<&str> = filters.iter().map(String::as_str).collect();
            store(&d, &ns, None).list_statuses(&f)
        })
        .await?;
        Ok(Response::new(ListStatusesResponse {
            statuses: st.iter().map(status_out).collect(),
        }))
    }

    type WriteStream = ChannelStream<WriteContentResponse>;

    async fn write(
        &self,
        req: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let ns = namespace::of(&req)?;
        let lease = lease_of(&req);
        let inbound = req.into_inner();
        let (tx, stream) = ChannelStream::new(2);
        let d = self.d.clone();
        tokio::spawn(async move {
            if let Err(s) = write_session(d, ns, lease, inbound, &tx).await {
                let _ = tx.send(Err(s)).await;
            }
        });
        Ok(Response::new(stream))
    }

    async fn abort(&self, req: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner().r#ref;
        blocking(move || store(&d, &ns, None).abort(&r)).await?;
        Ok(Response::new(()))
    }
}

/// One Write session's state between messages (moved to the blocking pool for each step).
struct Session {
    d: Arc<Daemon>,
    ns: String,
    lease: Option<String>,
    ref_: String,
    total: i64,
    expected: String,
    writer: Option<Writer>,
    /// Opened on bytes another namespace holds (digest, size): no ingest until a write.
    shared: Option<(Digest, u64)>,
    opened_at: std::time::SystemTime,
}

async fn write_session(
    d: Arc<Daemon>,
    ns: String,
    lease: Option<String>,
    mut inbound: Streaming<WriteContentRequest>,
    tx: &tokio::sync::mpsc::Sender<Result<WriteContentResponse, Status>>,
) -> Result<(), Status> {
    let Some(mut req) = inbound.message().await? else {
        return Err(Status::invalid_argument(
            "first message must have a reference",
        ));
    };
    if req.r#ref.is_empty() {
        return Err(Status::invalid_argument(
            "first message must have a reference",
        ));
    }
    let mut sess = Session {
        d,
        ns,
        lease,
        ref_: req.r#ref.clone(),
        total: req.total,
        expected: req.expected.clone(),
        writer: None,
        shared: None,
        opened_at: std::time::SystemTime::now(),
    };
    let (back, opened) = run(sess, |s| s.open().map_err(|e| to_status(&e))).await?;
    sess = back;
    opened?;
    let result = loop {
        let (back, step) = run(sess, move |s| s.step(req)).await?;
        sess = back;
        let (msg, done) = match step {
            Ok(x) => x,
            Err(e) => break Err(e),
        };
        if tx.send(Ok(msg)).await.is_err() {
            break Ok(()); // the client went away: keep the ingest
        }
        if done {
            break Ok(());
        }
        req = match inbound.message().await {
            Ok(Some(r)) => r,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
    };
    // Whatever ended the session, an open ingest is closed (kept, resumable).
    if let Some(w) = sess.writer.take() {
        let _ = tokio::task::spawn_blocking(move || w.close()).await;
    }
    result
}

/// Run `f` on the session in the blocking pool, handing the session back.
async fn run<T: Send + 'static>(
    mut sess: Session,
    f: impl FnOnce(&mut Session) -> Result<T, Status> + Send + 'static,
) -> Result<(Session, Result<T, Status>), Status> {
    tokio::task::spawn_blocking(move || {
        let r = f(&mut sess);
        (sess, r)
    })
    .await
    .map_err(|e| Status::internal(format!("write session task failed: {e}")))
}

impl Session {
    fn store(&self) -> NamespacedContent<'_> {
        store(&self.d, &self.ns, self.lease.clone())
    }

    fn expected(&self) -> anyhow::Result<Option<Digest>> {
        if self.expected.is_empty() {
            Ok(None)
        } else {
            digest(&self.expected).map(Some)
        }
    }

    /// Open (or resume) the ingest; the lock is held until the session ends. Bytes on disk
    /// that the namespace does not hold yet open no ingest (containerd's shared policy):
    /// the writer stands at their end, and its commit adopts them with the commit's labels.
    fn open(&mut self) -> anyhow::Result<()> {
        let exp = self.expected()?;
        if let Some(d) = exp {
            if let Some(size) = self.store().shared_elsewhere(&d, self.total.max(0) as u64) {
                self.shared = Some((d, size));
                return Ok(());
            }
        }
        let w = self
            .store()
            .writer(&self.ref_, self.total.max(0) as u64, exp)?;
        self.writer = Some(w);
        Ok(())
    }

    /// One message on a writer opened on shared bytes (at offset = size): a stat reports
    /// them whole, a commit at that offset adopts them with its labels. As containerd's
    /// namespaced writer: a write or commit at offset 0 truncates, i.e. starts a real ingest
    /// from nothing; data at the end copies the bytes into a real ingest first.
    fn step_shared(
        &mut self,
        req: WriteContentRequest,
        d: Digest,
        size: u64,
    ) -> Result<(WriteContentResponse, bool), Status> {
        let action = WriteAction::try_from(req.action).map_err(|_| {
            Status::invalid_argument(format!("unknown write action {}", req.action))
        })?;
        if action != WriteAction::Stat {
            if req.offset > 0 && req.offset as u64 != size {
                return Err(Status::out_of_range(format!(
                    "write @{} must occur at current offset {size}",
                    req.offset
                )));
            }
            if req.offset == 0 || !req.data.is_empty() {
                self.shared = None;
                let mut w = self
                    .store()
                    .writer(&self.ref_, self.total.max(0) as u64, None)
                    .map_err(|e| to_status(&e))?;
                if req.offset > 0 {
                    let copied = self
                        .d
                        .content
                        .reader(&d)
                        .and_then(|r| Ok(r.stream_from(0)?))
                        .and_then(|mut f| Ok(std::io::copy(&mut f, &mut w)?));
                    copied.map_err(|e| to_status(&e.context("copy the shared blob")))?;
                }
                self.writer = Some(w);
                return self.step(req);
            }
        }
        let stat = action == WriteAction::Stat;
        let msg = WriteContentResponse {
            action: req.action,
            offset: size as i64,
            total: if stat { size as i64 } else { 0 },
            digest: d.to_string(),
            started_at: stat.then(|| timestamp(self.opened_at)),
            updated_at: stat.then(|| timestamp(self.opened_at)),
        };
        if action != WriteAction::Commit {
            return Ok((msg, false));
        }
        if req.total != 0 && req.total as u64 != size {
            return Err(Status::unknown(format!(
                "{:?} failed size validation: {size} != {}",
                self.ref_, req.total
            )));
        }
        if !req.expected.is_empty() && req.expected != d.to_string() {
            return Err(Status::unknown(format!(
                "{:?} unexpected digest",
                self.ref_
            )));
        }
        self.store()
            .adopt(d, labels_in(&req.labels))
            .map_err(|e| to_status(&e))?;
        self.published_create(d, size as i64);
        Ok((msg, true))
    }

    fn published_create(&self, dg: Digest, size: i64) {
        self.d.events.publish(
            &self.ns,
            "/content/create",
            &ContentCreate {
                digest: dg.to_string(),
                size,
            },
        );
    }

    /// One message: its answer, and whether the session is done (committed).
    fn step(&mut self, req: WriteContentRequest) -> Result<(WriteContentResponse, bool), Status> {
        if let Some((d, size)) = self.shared {
            return self.step_shared(req, d, size);
        }
        let st = self
            .writer
            .as_ref()
            .map(Writer::status)
            .ok_or_else(|| Status::failed_precondition("writer is closed"))?;
        let mut msg = WriteContentResponse {
            action: req.action,
            offset: st.offset as i64,
            ..Default::default()
        };
        if !req.expected.is_empty() {
            self.expected = req.expected.clone();
            let d = digest(&req.expected).map_err(|e| to_status(&e))?;
            if self.store().info(&d).is_ok() {
                if let Some(w) = self.writer.take() {
                    let _ = w.close();
                }
                let _ = self.store().abort(&self.ref_);
                return Err(Status::already_exists(format!(
                    "blob with expected digest {} exists",
                    req.expected
                )));
            }
        }
        if req.total > 0 {
            self.total = req.total;
        }
        let action = WriteAction::try_from(req.action).map_err(|_| {
            Status::invalid_argument(format!("unknown write action {}", req.action))
        })?;
        let mut done = false;
        match action {
            WriteAction::Stat => {
                let w = self.writer_mut()?;
                msg.digest = w.digest().to_string();
                msg.started_at = Some(timestamp(st.started_at));
                msg.updated_at = Some(timestamp(st.updated_at));
                msg.total = self.total;
            }
            WriteAction::Write | WriteAction::Commit => {
                if req.offset > 0 && req.offset as u64 != st.offset {
                    return Err(Status::out_of_range(format!(
                        "write @{} must occur at current offset {}",
                        req.offset, st.offset
                    )));
                }
                let w = self.writer_mut()?;
                if req.offset == 0 && st.offset > 0 {
                    w.truncate(0)
                        .map_err(|e| to_status(&e.context("truncate failed")))?;
                    msg.offset = 0;
                }
                if !req.data.is_empty() {
                    w.write_all(&req.data)
                        .map_err(|e| Status::unknown(format!("write ingest {}: {e}", self.ref_)))?;
                    msg.offset += req.data.len() as i64;
                }
                if action == WriteAction::Commit {
                    let w = self
                        .writer
                        .take()
                        .ok_or_else(|| Status::failed_precondition("writer is closed"))?;
                    let exp = self.expected().map_err(|e| to_status(&e))?;
                    let size = self.total.max(0) as u64;
                    let dg = self
                        .store()
                        .commit(w, size, exp, labels_in(&req.labels))
                        .map_err(|e| to_status(&e))?;
                    self.published_create(dg, msg.offset);
                    msg.digest = dg.to_string();
                    done = true;
                } else {
                    msg.digest = self.writer_mut()?.digest().to_string();
                }
            }
        }
        Ok((msg, done))
    }

    fn writer_mut(&mut self) -> Result<&mut Writer, Status> {
        self.writer
            .as_mut()
            .ok_or_else(|| Status::failed_precondition("writer is closed"))
    }
}
