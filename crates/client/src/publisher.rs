//! Feed producer side: length-prefixed bincode frames over TCP.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};

use tickwire_protocol::ingest::{encode_frame, IngestFrame};
use tickwire_protocol::Quote;

use crate::Result;

/// Buffered: frames are written when the buffer passes this size or on
/// `flush`, so a fast feed makes few syscalls.
const FLUSH_AT: usize = 64 * 1024;

pub struct Publisher {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Publisher {
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Publisher> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Publisher {
            stream,
            buf: Vec::with_capacity(FLUSH_AT),
        })
    }

    /// Sends `Hello { token }`; required first when the broker has tokens.
    pub fn hello(&mut self, token: &str) -> Result<()> {
        self.send(&IngestFrame::Hello {
            token: token.to_owned(),
        })
    }

    pub fn publish(&mut self, quote: Quote) -> Result<()> {
        self.send(&IngestFrame::Quote(quote))
    }

    pub fn publish_batch(&mut self, quotes: Vec<Quote>) -> Result<()> {
        self.send(&IngestFrame::Batch(quotes))
    }

    pub fn send(&mut self, frame: &IngestFrame) -> Result<()> {
        encode_frame(frame, &mut self.buf);
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes raw bytes (tests use it to send malformed frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.flush()?;
        self.stream.write_all(bytes)?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.stream.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
