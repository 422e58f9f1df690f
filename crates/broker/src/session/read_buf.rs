//! Bytes received but not yet a whole frame or request head. Nearly
//! always empty (a read usually holds whole frames, decoded straight from
//! it), so it is one pointer inline: every idle connection pays for the
//! inline size, and only one with a partial frame pays for a buffer.

// The box is the point: a `Vec` inline is three words on every connection.
#[allow(clippy::box_collection)]
#[derive(Default)]
pub(super) struct ReadBuf(Option<Box<Vec<u8>>>);

impl ReadBuf {
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.is_empty())
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.0
                .get_or_insert_with(Box::default)
                .extend_from_slice(data);
        }
    }

    /// Everything held, taken out (the buffer is then empty).
    pub fn take(&mut self) -> Vec<u8> {
        self.0.take().map(|b| *b).unwrap_or_default()
    }

    /// Holds `bytes` (nothing, and no memory, when they are empty).
    pub fn put(&mut self, bytes: Vec<u8>) {
        self.0 = (!bytes.is_empty()).then(|| Box::new(bytes));
    }

    /// Drops everything and the memory.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}
