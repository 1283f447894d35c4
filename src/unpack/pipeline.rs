//! The decompressing half of an unpack on a thread of its own: blob → digest → decompress
//! → diffID digest runs there and hands the tar stream over in chunks, while the calling
//! thread parses the tar and makes the files. A layer's unpack then uses two cores (the
//! one-pass design stays: nothing is written but the files, the ingest and these chunks
//! in memory, at most [`QUEUE`] × [`CHUNK`] of them).
//!
//! A failure on the decompressing side reaches the tar side as the read error it is; a
//! failure on the tar side drops the queue, which stops the decompressing side at its
//! next chunk.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::{anyhow, Result};

use super::decompress::{Compression, Decompressor};
use super::hashing_reader::HashingReader;
use crate::content::Digest;

/// Bytes of tar stream per hand-over.
const CHUNK: usize = 256 << 10;
/// Chunks in flight.
const QUEUE: usize = 8;
/// Bytes of blob per read from the source (the network, the ingest, a store blob): big
/// reads mean few syscalls and few trips through the tee's bookkeeping.
const BLOB_READ: usize = 256 << 10;

/// What the decompressing side measured.
pub struct Decoded {
    /// None when the blob was only counted.
    pub digest: Option<Digest>,
    pub size: u64,
    pub diff_id: Digest,
    pub uncompressed_size: u64,
}

/// The tar stream as the calling thread reads it.
pub struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The sender is gone: the stream ended (the result says how).
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decompress `blob` on a new thread while `consume` reads the tar stream on this one.
/// The blob is digested when `digest_blob` is set (else only counted); `max_uncompressed`
/// bounds the tar stream. `consume` should read the stream to its end.
pub fn decode_beside<R, T>(
    blob: R,
    digest_blob: bool,
    compression: Compression,
    max_uncompressed: u64,
    consume: impl FnOnce(&mut ChunkReader) -> Result<T>,
) -> Result<(T, Decoded)>
where
    R: Read + Send,
{
    let (tx, rx) = sync_channel(QUEUE);
    std::thread::scope(|s| {
        let producer = std::thread::Builder::new()
            .name("decompress".into())
            .spawn_scoped(s, move || {
                produce(blob, digest_blob, compression, max_uncompressed, tx)
            })
            .map_err(|e| anyhow!("spawn decompress thread: {e}"))?;
        let mut reader = ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        };
        let consumed = consume(&mut reader);
        // Hang up first, so a producer blocked on a full queue stops.
        drop(reader);
        let produced = producer
            .join()
            .map_err(|_| anyhow!("decompress thread panicked"))?;
        // The tar side's error comes first: it includes a decompress error it read.
        let t = consumed?;
        Ok((t, produced?))
    })
}

fn produce<R: Read>(
    blob: R,
    digest_blob: bool,
    compression: Compression,
    max_uncompressed: u64,
    tx: SyncSender<io::Result<Vec<u8>>>,
) -> Result<Decoded> {
    let fail = |tx: &SyncSender<io::Result<Vec<u8>>>, e: anyhow::Error| {
        let _ = tx.send(Err(io::Error::other(format!("{e:#}"))));
        e
    };
    let blob = match digest_blob {
        true => HashingReader::new(blob),
        false => HashingReader::counting(blob),
    };
    let mut buffered = BufReader::with_capacity(BLOB_READ, blob);
    let compression = compression.sniff(&mut buffered).map_err(|e| fail(&tx, e))?;
    let decoder = Decompressor::new(compression, buffered).map_err(|e| fail(&tx, e))?;
    let mut stream = HashingReader::new(decoder).with_limit(max_uncompressed, "uncompressed layer");
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut got = 0;
        // Fill the chunk (decoders hand out small reads), stopping at the end.
        while got < CHUNK {
            match stream.read(&mut chunk[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let msg = e.to_string();
                    let _ = tx.send(Err(e));
                    return Err(anyhow!(msg));
                }
            }
        }
        if got == 0 {
            break;
        }
        chunk.truncate(got);
        if tx.send(Ok(chunk)).is_err() {
            return Err(anyhow!("unpack stopped reading the layer"));
        }
    }
    let (diff_id, uncompressed_size, decoder) = stream.finish();
    let mut buffered = decoder.into_inner();
    if let Err(e) = io::copy(&mut buffered, &mut io::sink()) {
        let e = anyhow::Error::new(e).context("read layer blob to its end");
        return Err(fail(&tx, e));
    }
    let (digest, size, _) = buffered.into_inner().finish();
    drop(tx);
    Ok(Decoded {
        digest: digest_blob.then_some(digest),
        size,
        diff_id,
        uncompressed_size,
    })
}
