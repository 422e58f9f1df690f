//! Feed producer side: length-prefixed bincode frames over TCP.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};

use tickwire_protocol::ingest::{encode_frame, IngestFrame};
use tickwire_protocol::Quote;

use crate::stream::{Stream, TlsOptions};
use crate::Result;

/// Buffered: frames are written when the buffer passes this size or on
/// `flush`, so a fast feed makes few syscalls.
const FLUSH_AT: usize = 64 * 1024;

pub struct Publisher {
    stream: Stream,
    buf: Vec<u8>,
}

impl Publisher {
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Publisher> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Publisher {
            stream: Stream::Plain(stream),
            buf: Vec::with_capacity(FLUSH_AT),
        })
    }

    /// Connects to an ingest listener that requires TLS (`[ingest.tls]`).
    pub fn connect_tls(addr: impl ToSocketAddrs, tls: &TlsOptions) -> Result<Publisher> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Publisher {
            stream: Stream::tls(stream, tls)?,
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
        self.stream.flush()?;
        Ok(())
    }

    /// The TCP socket (plain or under TLS).
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Reads from the connection (the broker sends nothing on a healthy
    /// one; tests read to see it closed).
    pub fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.stream, buf)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
