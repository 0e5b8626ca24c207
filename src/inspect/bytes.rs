//! Fixed-width integers read from a header; `None` when the header ends before them.

macro_rules! reader {
    ($name:ident, $int:ty, $from:ident) => {
        pub fn $name(head: &[u8], at: usize) -> Option<$int> {
            let end = at.checked_add(size_of::<$int>())?;
            Some(<$int>::$from(head.get(at..end)?.try_into().ok()?))
        }
    };
}

reader!(le_u16, u16, from_le_bytes);
reader!(le_u32, u32, from_le_bytes);
reader!(le_u64, u64, from_le_bytes);
reader!(be_u32, u32, from_be_bytes);
reader!(be_u64, u64, from_be_bytes);
