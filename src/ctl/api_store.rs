//! The archive code's store ([`ArchiveStore`]) over containerd's API: blobs through the
//! Content service (Write as containerd's remote writer drives it: a Stat first, then writes
//! at the offset, then a Commit with the size, digest and labels), records through Images.
//! So `ctr image import`/`export` run client-side, as ctr 1.6 runs them, against any
//! containerd and ociboxd alike.
//!
//! The archive code is synchronous (it reads a tar stream); it runs on a blocking thread and
//! each call here waits on the ctl's runtime ([`Handle::block_on`]) while the thread in
//! `Runtime::block_on` drives the connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use anyhow::{anyhow, Context as _, Result};
use tokio::runtime::Handle;
use tonic::codegen::tokio_stream::Stream;

use super::pull_client::{grpc, Session};
use crate::api::services::content::v1 as content_api;
use crate::api::services::images::v1 as images_api;
use crate::api::types as api_types;
use crate::archive::store::{ArchiveStore, IngestWriter};
use crate::content::{Digest, Digester};
use crate::errdefs::{kind_of, ErrorKind};
use crate::metadata::content::ContentRecord;
use crate::metadata::encoding::Labels;
use crate::metadata::images::{Image, Target};

/// The bytes one `Content.Write` message carries (containerd's client copies in 1 MiB).
const WRITE_CHUNK: usize = 1 << 20;

/// A namespace's content and images over the API, under the session's lease.
#[derive(Clone)]
pub struct ApiStore {
    pub session: Session,
    pub handle: Handle,
}

impl ApiStore {
    /// The store of `session`, driven by the runtime this is called on.
    pub fn current(session: Session) -> ApiStore {
        ApiStore {
            session,
            handle: Handle::current(),
        }
    }

    fn wait<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.handle.block_on(f)
    }
}

/// Write requests fed from a channel (tonic wants a `Stream`).
struct Requests(tokio::sync::mpsc::Receiver<content_api::WriteContentRequest>);

impl Stream for Requests {
    type Item = content_api::WriteContentRequest;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// One `Content.Write` session.
struct ApiWriter<'a> {
    store: &'a ApiStore,
    ref_: String,
    tx: tokio::sync::mpsc::Sender<content_api::WriteContentRequest>,
    responses: tonic::Streaming<content_api::WriteContentResponse>,
    buf: Vec<u8>,
    offset: u64,
    digester: Digester,
}

fn labels_of(h: HashMap<String, String>) -> Labels {
    h.into_iter().collect()
}

impl ApiWriter<'_> {
    /// Send one request and wait for its answer (containerd answers every message).
    fn exchange(
        &mut self,
        msg: content_api::WriteContentRequest,
    ) -> Result<content_api::WriteContentResponse> {
        let (tx, responses) = (&self.tx, &mut self.responses);
        self.store.handle.block_on(async {
            if tx.send(msg).await.is_err() {
                // The call ended: its status says why.
            }
            match responses.message().await {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(anyhow!("the content write stream ended early")),
                Err(e) => Err(grpc(e)),
            }
        })
    }

    fn send_buffer(&mut self) -> Result<()> {
        let data = std::mem::take(&mut self.buf);
        let n = data.len() as u64;
        let msg = content_api::WriteContentRequest {
            action: content_api::WriteAction::Write as i32,
            r#ref: self.ref_.clone(),
            offset: self.offset as i64,
            data,
            ..Default::default()
        };
        self.exchange(msg)?;
        self.offset += n;
        Ok(())
    }
}

impl Write for ApiWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = WRITE_CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.digester.update(&data[..n]);
        if self.buf.len() == WRITE_CHUNK {
            self.send_buffer().map_err(std::io::Error::other)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl IngestWriter for ApiWriter<'_> {
    fn digest(&self) -> Digest {
        self.digester.digest()
    }

    fn commit(
        mut self: Box<Self>,
        size: u64,
        expected: Option<Digest>,
        labels: Labels,
    ) -> Result<Digest> {
        let data = std::mem::take(&mut self.buf);
        let msg = content_api::WriteContentRequest {
            action: content_api::WriteAction::Commit as i32,
            r#ref: self.ref_.clone(),
            offset: self.offset as i64,
            total: size as i64,
            expected: expected.map(|d| d.to_string()).unwrap_or_default(),
            data,
            labels: labels.into_iter().collect(),
        };
        let resp = self.exchange(msg)?;
        let got = if resp.digest.is_empty() {
            expected.unwrap_or_else(|| self.digester.digest())
        } else {
            resp.digest
                .parse()
                .with_context(|| format!("commit of {} answered {:?}", self.ref_, resp.digest))?
        };
        Ok(got)
    }
}

fn record_of(i: content_api::Info) -> Result<ContentRecord> {
    Ok(ContentRecord {
        digest: i
            .digest
            .parse()
            .with_context(|| format!("content digest {:?}", i.digest))?,
        size: i.size.max(0) as u64,
        labels: labels_of(i.labels),
        created_at: 0,
        updated_at: 0,
    })
}

fn image_of(i: images_api::Image) -> Result<Image> {
    let t = i.target.unwrap_or_default();
    Ok(Image {
        name: i.name,
        target: Target {
            media_type: t.media_type,
            digest: t
                .digest
                .parse()
                .with_context(|| format!("image target digest {:?}", t.digest))?,
            size: t.size.max(0) as u64,
            annotations: t.annotations.into_iter().collect(),
        },
        labels: labels_of(i.labels),
        created_at: 0,
        updated_at: 0,
    })
}

fn api_image(i: &Image) -> images_api::Image {
    images_api::Image {
        name: i.name.clone(),
        labels: i.labels.clone().into_iter().collect(),
        target: Some(api_types::Descriptor {
            media_type: i.target.media_type.clone(),
            digest: i.target.digest.to_string(),
            size: i.target.size as i64,
            annotations: i.target.annotations.clone().into_iter().collect(),
        }),
        ..Default::default()
    }
}

/// A blob read through `Content.Read`, its chunks handed over by a task on the runtime.
pub struct ContentStream {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ContentStream {
    /// Start reading `digest` from `offset` on `handle`'s runtime.
    pub fn open(s: &Session, handle: &Handle, digest: &str, offset: u64) -> ContentStream {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (s, digest) = (s.clone(), digest.to_string());
        handle.spawn(async move {
            let call = s
                .content()
                .read(s.req(content_api::ReadContentRequest {
                    digest,
                    offset: offset as i64,
                    size: 0,
                }))
                .await;
            let mut stream = match call {
                Ok(r) => r.into_inner(),
                Err(e) => {
                    let _ = tx.send(Err(grpc(e))).await;
                    return;
                }
            };
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        if tx.send(Ok(m.data)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(grpc(e))).await;
                        return;
                    }
                }
            }
        });
        ContentStream {
            rx,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ContentStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.chunk.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(format!("{e:#}"))),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl ArchiveStore for ApiStore {
    fn open_writer(
        &self,
        ref_: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Option<Box<dyn IngestWriter + '_>>> {
        let s = &self.session;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let stat = content_api::WriteContentRequest {
            action: content_api::WriteAction::Stat as i32,
            r#ref: ref_.to_string(),
            total: total as i64,
            expected: expected.map(|d| d.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        let opened = self.wait(async {
            let _ = tx.send(stat).await;
            let mut responses = s
                .content()
                .write(s.req(Requests(rx)))
                .await
                .map_err(grpc)?
                .into_inner();
            match responses.message().await {
                Ok(Some(_)) => Ok(responses),
                Ok(None) => Err(anyhow!("the content write stream ended at its stat")),
                Err(e) => Err(grpc(e)),
            }
        });
        let responses = match opened {
            Ok(r) => r,
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists && expected.is_some() => {
                return Ok(None)
            }
            Err(e) => return Err(e.context(format!("failed to open writer for {ref_}"))),
        };
        // The first write goes at offset 0: what an earlier attempt left is truncated.
        Ok(Some(Box::new(ApiWriter {
            store: self,
            ref_: ref_.to_string(),
            tx,
            responses,
            buf: Vec::with_capacity(WRITE_CHUNK),
            offset: 0,
            digester: Digester::new(),
        })))
    }

    fn abort(&self, ref_: &str) -> Result<()> {
        let s = &self.session;
        self.wait(async {
            s.content()
                .abort(s.req(content_api::AbortRequest {
                    r#ref: ref_.to_string(),
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        })
    }

    fn info(&self, d: &Digest) -> Result<ContentRecord> {
        let s = &self.session;
        let info = self.wait(async {
            let r = s
                .content()
                .info(s.req(content_api::InfoRequest {
                    digest: d.to_string(),
                }))
                .await
                .map_err(grpc)?;
            Ok(r.into_inner().info.unwrap_or_default())
        })?;
        record_of(info)
    }

    fn read_all(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        self.wait(super::pull_client::read_content(
            &self.session,
            &d.to_string(),
            limit,
        ))
    }

    fn stream(&self, d: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(ContentStream::open(
            &self.session,
            &self.handle,
            &d.to_string(),
            0,
        )))
    }

    fn update_labels(&self, d: &Digest, labels: &Labels, _paths: &[&str]) -> Result<()> {
        let labels: HashMap<String, String> = labels.clone().into_iter().collect();
        self.wait(super::pull_client::add_content_labels(
            &self.session,
            d,
            &labels,
        ))
    }

    fn walk(&self) -> Result<Vec<ContentRecord>> {
        let s = &self.session;
        let infos = self.wait(async {
            let mut stream = s
                .content()
                .list(s.req(content_api::ListContentRequest { filters: vec![] }))
                .await
                .map_err(grpc)?
                .into_inner();
            let mut v = Vec::new();
            while let Some(r) = stream.message().await.map_err(grpc)? {
                v.extend(r.info);
            }
            Ok(v)
        })?;
        infos.into_iter().map(record_of).collect()
    }

    fn image(&self, name: &str) -> Result<Image> {
        let s = &self.session;
        let i = self.wait(async {
            let r = s
                .images()
                .get(s.req(images_api::GetImageRequest {
                    name: name.to_string(),
                }))
                .await
                .map_err(grpc)?;
            Ok(r.into_inner().image.unwrap_or_default())
        })?;
        image_of(i)
    }

    /// containerd's `client.Import`: Update of the target, Create when there is none.
    fn record_images(&self, list: &[Image]) -> Result<Vec<Image>> {
        let s = &self.session;
        let mut out = Vec::new();
        for i in list {
            let img = api_image(i);
            let rec = self.wait(async {
                let updated = s
                    .images()
                    .update(s.req(images_api::UpdateImageRequest {
                        image: Some(img.clone()),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["target".to_string()],
                        }),
                        source_date_epoch: None,
                    }))
                    .await;
                match updated {
                    Ok(r) => Ok(r.into_inner().image.unwrap_or_default()),
                    Err(e) if e.code() == tonic::Code::NotFound => {
                        let r = s
                            .images()
                            .create(s.req(images_api::CreateImageRequest {
                                image: Some(img),
                                source_date_epoch: None,
                            }))
                            .await
                            .map_err(grpc)?;
                        Ok(r.into_inner().image.unwrap_or_default())
                    }
                    Err(e) => Err(grpc(e)),
                }
            })?;
            out.push(image_of(rec)?);
        }
        Ok(out)
    }
}
