//! The part of a file being written that is not uploaded yet: one part's worth of bytes, writable at any offset,
//! readable back, and held against the memory budget in proportion to what it holds.
//!
//! Memory grows with the data: a 4 KiB file holds a few KiB, not a part. The buffer doubles its capacity as it
//! fills (the first part of a file), or takes a whole part at once when the file is known to be bigger than one
//! part (every part after the first). Each capacity is reserved from the budget before it is allocated, so a
//! writer that would exceed the budget waits.

use bytes::{Bytes, BytesMut};

use super::super::budget::{MemoryBudget, Reservation};

/// The smallest capacity a buffer starts with.
const FIRST_CAPACITY: usize = 64 * 1024;

/// Bytes `[start, start + len)` of the file, not uploaded yet.
#[derive(Debug)]
pub(super) struct PartBuffer {
    /// The file offset of the first byte.
    start: u64,
    data: BytesMut,
    /// The most the buffer holds (the part size).
    limit: usize,
    memory: Option<Reservation>,
}

impl PartBuffer {
    pub(super) fn new(start: u64, limit: usize) -> Self {
        Self {
            start,
            data: BytesMut::new(),
            limit,
            memory: None,
        }
    }

    pub(super) fn start(&self) -> u64 {
        self.start
    }

    /// The file offset just past the last byte held.
    pub(super) fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    pub(super) fn is_full(&self) -> bool {
        self.data.len() >= self.limit
    }

    /// Writes `bytes` at file offset `offset`, which must lie within `[start, start + limit)`; a gap after the
    /// current end reads as zeros. Returns how many bytes were taken (fewer when the part fills up).
    pub(super) async fn write_at(
        &mut self,
        offset: u64,
        bytes: &[u8],
        budget: &MemoryBudget,
        whole_parts: bool,
    ) -> usize {
        let Some(at) = offset
            .checked_sub(self.start)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|at| *at < self.limit)
        else {
            return 0;
        };
        let taken = bytes.len().min(self.limit - at);
        let end = at + taken;
        self.make_room(end, budget, whole_parts).await;
        if end > self.data.len() {
            self.data.resize(end, 0);
        }
        self.data[at..end].copy_from_slice(&bytes[..taken]);
        taken
    }

    /// Bytes at file offsets `[offset, offset + len)` that this buffer holds (fewer or none outside it).
    pub(super) fn read_at(&self, offset: u64, len: usize) -> &[u8] {
        let Some(at) = offset
            .checked_sub(self.start)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|at| *at < self.data.len())
        else {
            return &[];
        };
        &self.data[at..(at + len).min(self.data.len())]
    }

    /// Cuts the file at `len`, which must not be before `start`: bytes after it are dropped, a longer `len` reads
    /// as zeros up to it.
    pub(super) async fn truncate(&mut self, len: u64, budget: &MemoryBudget, whole_parts: bool) {
        let Some(at) = len
            .checked_sub(self.start)
            .and_then(|at| usize::try_from(at).ok())
        else {
            return;
        };
        let at = at.min(self.limit);
        if at > self.data.len() {
            self.make_room(at, budget, whole_parts).await;
            self.data.resize(at, 0);
        } else {
            self.data.truncate(at);
        }
    }

    /// Hands over the bytes held (with the memory they take) and starts over empty right after them.
    pub(super) fn take(&mut self) -> (Bytes, Option<Reservation>) {
        let bytes = std::mem::take(&mut self.data).freeze();
        self.start += bytes.len() as u64;
        (bytes, self.memory.take())
    }

    /// Empties the buffer and moves it to `start` (a truncate to 0 starts the file over).
    pub(super) fn reset(&mut self, start: u64) {
        self.data = BytesMut::new();
        self.memory = None;
        self.start = start;
    }

    /// Grows the capacity to hold `needed` bytes, reserving it first. The old allocation's reservation is
    /// released only after the new one is made, because both exist while the bytes are copied.
    async fn make_room(&mut self, needed: usize, budget: &MemoryBudget, whole_parts: bool) {
        if needed <= self.data.capacity() {
            return;
        }
        let capacity = if whole_parts {
            self.limit
        } else {
            needed
                .next_power_of_two()
                .max(FIRST_CAPACITY)
                .min(self.limit)
                .max(needed)
        };
        let reservation = budget.reserve(capacity as u64).await;
        let mut grown = BytesMut::with_capacity(capacity);
        grown.extend_from_slice(&self.data);
        self.data = grown;
        self.memory = Some(reservation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn random_writes_holes_and_reads_back() {
        let budget = MemoryBudget::new(1 << 20);
        let mut buf = PartBuffer::new(100, 1000);
        assert_eq!(buf.write_at(150, b"world", &budget, false).await, 5);
        assert_eq!(buf.write_at(100, b"hello", &budget, false).await, 5);
        assert_eq!(buf.end(), 155);
        assert_eq!(buf.read_at(100, 5), b"hello");
        assert_eq!(buf.read_at(105, 3), &[0, 0, 0], "a hole reads as zeros");
        assert_eq!(buf.read_at(153, 10), b"ld");
        assert!(buf.read_at(99, 1).is_empty() && buf.read_at(155, 1).is_empty());
        // Offsets outside the part take nothing.
        assert_eq!(buf.write_at(99, b"x", &budget, false).await, 0);
        assert_eq!(buf.write_at(1100, b"x", &budget, false).await, 0);
        // A write across the end of the part takes what fits.
        assert_eq!(buf.write_at(1098, b"abcd", &budget, false).await, 2);
        assert!(buf.is_full());
    }

    #[tokio::test]
    async fn memory_follows_the_data() {
        let budget = MemoryBudget::new(64 << 20);
        let mut small = PartBuffer::new(0, 20 << 20);
        small.write_at(0, &[1; 4096], &budget, false).await;
        let held = budget.total() - budget.available();
        assert!(
            held <= FIRST_CAPACITY as u64,
            "a 4 KiB file holds {held} bytes"
        );

        let mut big = PartBuffer::new(0, 20 << 20);
        big.write_at(0, &[1; 4096], &budget, true).await;
        assert!(budget.total() - budget.available() >= 20 << 20);
        let (bytes, memory) = big.take();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(big.start(), 4096);
        drop(memory);
        drop(bytes);
    }

    #[tokio::test]
    async fn truncate_cuts_or_extends_with_zeros() {
        let budget = MemoryBudget::new(1 << 20);
        let mut buf = PartBuffer::new(10, 100);
        buf.write_at(10, b"abcdef", &budget, false).await;
        buf.truncate(13, &budget, false).await;
        assert_eq!(buf.read_at(10, 10), b"abc");
        buf.truncate(15, &budget, false).await;
        assert_eq!(buf.read_at(10, 10), b"abc\0\0");
        buf.truncate(5, &budget, false).await;
        assert_eq!(
            buf.end(),
            15,
            "a cut before the buffer is not the buffer's to make"
        );
    }
}
