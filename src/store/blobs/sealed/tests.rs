use sha2::{Digest, Sha256};

use super::*;

const SEG: usize = SEGMENT_BYTES;

fn known_key() -> DataKey {
    let key: Vec<u8> = (0u8..32).collect();
    let prefix: Vec<u8> = (0xa0u8..0xa7).collect();
    DataKey::from_parts(&key, &prefix).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 256) as u8).collect()
}

/// Seals `plain` handing it over in pieces of `piece` bytes.
fn seal(key: &DataKey, plain: &[u8], piece: usize) -> Vec<u8> {
    let mut sealer = Sealer::at(key.cipher(), 0).unwrap();
    let mut out = Vec::new();
    for chunk in plain.chunks(piece.max(1)) {
        sealer.push(chunk, &mut out).unwrap();
    }
    assert_eq!(
        sealer.sealed_through(),
        (plain.len() - plain.len() % SEG) as u64
    );
    assert_eq!(sealer.pending(), plain.len() % SEG);
    sealer.finish(&mut out).unwrap();
    assert_eq!(out.len() as u64, sealed_len(plain.len() as u64));
    out
}

/// Opens plain bytes `start..start + len` from the stored bytes the range names, handed over
/// in pieces of `piece` bytes.
fn open(
    key: &DataKey,
    stored: &[u8],
    plain_len: u64,
    start: u64,
    len: u64,
    piece: usize,
) -> Result<Vec<u8>, SealError> {
    let range = SealedRange::of(plain_len, start, len);
    let from = (range.stored_start as usize).min(stored.len());
    let to = ((range.stored_start + range.stored_len) as usize).min(stored.len());
    let mut opener = Opener::new(key.cipher(), range);
    let mut plain = VecDeque::new();
    for chunk in stored[from..to].chunks(piece.max(1)) {
        opener.push(chunk, &mut plain)?;
    }
    opener.finish(&mut plain)?;
    Ok(plain.into_iter().flat_map(|b| b.to_vec()).collect())
}

/// Values computed independently with Python's `cryptography` (AESGCM, nonce = prefix ‖
/// index as 32-bit big-endian ‖ last flag), so the format is AES-256-GCM in STREAM and not
/// just whatever this code does.
#[test]
fn the_format_matches_known_answers() {
    let key = known_key();
    let plain = pattern(SEG + 100);
    let stored = seal(&key, &plain, 10_007);
    assert_eq!(stored.len(), 65_668);
    assert_eq!(
        hex::encode(Sha256::digest(&stored)),
        "c40e16dcc604c4c92dadaac5b9430c892328ae96b4777073c4c2644a4c196533"
    );
    assert_eq!(
        hex::encode(&stored[SEG..SEG + TAG_BYTES]),
        "f37a2aebb29c373d0d496b0fa285aea6"
    );
    assert_eq!(
        hex::encode(&stored[SEG + TAG_BYTES..]),
        "ee20858d83885adf4b41dceb24e610930012e9cb466808751f096b5ddefe0a3213ac0552941f8811198490bbd8609ae38a0fa95e174194179e8a1e6076bacbfc48dbc60e8e5653951093a4a87bdc1745e53096c41e15b88d35be2ddf358c1e71b010114339815dfbc195d0c35a81d3885b247d68"
    );
    // An empty stream is one empty last segment: its tag alone.
    assert_eq!(
        hex::encode(seal(&key, &[], 1)),
        "4d34eaed9250e09e52907c89588102a2"
    );
    // A whole number of segments ends with an empty last one.
    let stored = seal(&key, &pattern(2 * SEG), SEG);
    assert_eq!(stored.len(), 131_120);
    assert_eq!(
        hex::encode(Sha256::digest(&stored)),
        "d0dcd34b6c7e0db344085039a03ff521ba043574028a78d542a1f6e2378deff2"
    );
    assert_eq!(
        hex::encode(&stored[stored.len() - TAG_BYTES..]),
        "87faff2641eae291752c8c054b1c5403"
    );
}

#[test]
fn any_range_opens_to_exactly_its_plain_bytes() {
    let key = DataKey::generate();
    for plain_len in [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 5] {
        let plain = pattern(plain_len);
        let stored = seal(&key, &plain, 4_099);
        let n = plain_len as u64;
        let s = SEG as u64;
        let mut ranges = vec![(0, n), (0, 0), (n, 0)];
        for start in [1, s - 1, s, s + 1, 2 * s, 3 * s] {
            for len in [1, s - 1, s, s + 1, 2 * s + 3] {
                if start <= n {
                    ranges.push((start, len.min(n - start)));
                }
            }
        }
        for (start, len) in ranges {
            for piece in [1_000, SEG + TAG_BYTES, 1 << 20] {
                let opened = open(&key, &stored, n, start, len, piece)
                    .unwrap_or_else(|e| panic!("{plain_len}: {start}+{len}: {e}"));
                assert_eq!(
                    opened,
                    plain[start as usize..(start + len) as usize],
                    "{plain_len}: {start}+{len} in pieces of {piece}"
                );
            }
        }
    }
}

#[test]
fn a_range_reads_only_the_segments_it_needs() {
    let s = SEG as u64;
    let sealed = s + TAG_BYTES as u64;
    let range = SealedRange::of(10 * s, 3 * s + 5, s);
    assert_eq!(range.stored_start, 3 * sealed);
    assert_eq!(range.stored_len, 2 * sealed);
    // The end of the stream includes its last (here empty) segment.
    let range = SealedRange::of(10 * s, 9 * s, s);
    assert_eq!(range.stored_start, 9 * sealed);
    assert_eq!(range.stored_len, sealed + TAG_BYTES as u64);
    assert_eq!(sealed_offset(4 * s), 4 * sealed);
    assert_eq!(segment_floor(4 * s + 17), 4 * s);
    assert!(Sealer::at(DataKey::generate().cipher(), 5).is_err());
}

#[test]
fn tampering_fails_authentication() {
    let key = DataKey::generate();
    let plain = pattern(3 * SEG + 5);
    let n = plain.len() as u64;
    let stored = seal(&key, &plain, 1 << 20);
    let whole = SEG + TAG_BYTES;
    assert_eq!(open(&key, &stored, n, 0, n, 1 << 20).unwrap(), plain);

    // A flipped bit, in a segment's ciphertext or in its tag.
    for at in [0, SEG + 3, whole + SEG + 1, stored.len() - 1] {
        let mut flipped = stored.clone();
        flipped[at] ^= 0x10;
        let segment = (at / whole) as u64;
        assert_eq!(
            open(&key, &flipped, n, 0, n, 1 << 20),
            Err(SealError::Tampered(segment)),
            "bit flipped at {at}"
        );
    }

    // Two segments swapped.
    let mut swapped = stored.clone();
    let (first, rest) = swapped.split_at_mut(whole);
    first.swap_with_slice(&mut rest[..whole]);
    assert_eq!(
        open(&key, &swapped, n, 0, n, 1 << 20),
        Err(SealError::Tampered(0))
    );
    assert_eq!(
        open(&key, &swapped, n, SEG as u64, 10, 1 << 20),
        Err(SealError::Tampered(1))
    );

    // Cut at each segment boundary: the length the database keeps says more must come.
    for kept in 1..=3 {
        assert_eq!(
            open(&key, &stored[..kept * whole], n, 0, n, 1 << 20),
            Err(SealError::Truncated(kept as u64)),
            "cut after {kept} segments"
        );
    }

    // The last segment dropped, and the length changed to match: the segment before it was
    // not sealed as the last, so it cannot end the stream.
    let without_last = &stored[..3 * whole];
    let claimed = 3 * SEG as u64 - 1;
    let range = SealedRange::of(claimed, 0, claimed);
    let as_read = &without_last[..range.stored_len as usize];
    assert_eq!(
        open(&key, as_read, claimed, 0, claimed, 1 << 20),
        Err(SealError::Tampered(2))
    );
    assert_eq!(
        open(
            &key,
            without_last,
            3 * SEG as u64,
            0,
            3 * SEG as u64,
            1 << 20
        ),
        Err(SealError::Truncated(3))
    );

    // Another data key opens nothing.
    assert_eq!(
        open(&DataKey::generate(), &stored, n, 0, 10, 1 << 20),
        Err(SealError::Tampered(0))
    );
}

/// Not a test of behaviour: how fast sealing and opening run here (`cargo test --release
/// --features ssr --lib sealing_speed -- --ignored --nocapture`).
#[test]
#[ignore]
fn sealing_speed() {
    let key = DataKey::generate();
    let plain = pattern(64 << 20);
    let cipher = key.cipher();
    let started = std::time::Instant::now();
    let mut buffer = Vec::with_capacity(SEG + TAG_BYTES);
    for (i, segment) in plain.chunks(SEG).enumerate() {
        buffer.clear();
        buffer.extend_from_slice(segment);
        cipher.seal(i as u64, false, &mut buffer, 0).unwrap();
    }
    let raw = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let mut sealer = Sealer::at(key.cipher(), 0).unwrap();
    let mut stored = Vec::with_capacity(plain.len() + plain.len() / 1000);
    for piece in plain.chunks(1 << 20) {
        sealer.push(piece, &mut stored).unwrap();
    }
    sealer.finish(&mut stored).unwrap();
    let sealing = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let range = SealedRange::of(plain.len() as u64, 0, plain.len() as u64);
    let mut opener = Opener::new(key.cipher(), range);
    let mut opened = VecDeque::new();
    for piece in stored.chunks(2 << 20) {
        opener.push(piece, &mut opened).unwrap();
    }
    opener.finish(&mut opened).unwrap();
    let opening = started.elapsed().as_secs_f64();
    assert_eq!(opened.iter().map(Bytes::len).sum::<usize>(), plain.len());
    println!(
        "seal segments {:.0} MiB/s, Sealer {:.0} MiB/s, Opener {:.0} MiB/s",
        64.0 / raw,
        64.0 / sealing,
        64.0 / opening
    );
}

/// Collects a stream: the bytes before it ended or failed, and the error if it failed.
async fn drain(mut stream: BoxStream<'static, io::Result<Bytes>>) -> (Vec<u8>, Option<io::Error>) {
    let mut got = Vec::new();
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(piece) => got.extend_from_slice(&piece),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

/// The stored bytes of a range in blocks of whole segments, as the blob store reads them.
fn blocks_of(
    stored: &[u8],
    range: SealedRange,
    block: u64,
) -> BoxStream<'static, io::Result<Bytes>> {
    let from = range.stored_start as usize;
    let to = ((range.stored_start + range.stored_len) as usize).min(stored.len());
    let pieces: Vec<io::Result<Bytes>> = stored[from..to]
        .chunks(block as usize)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

#[tokio::test]
async fn blocks_open_in_parallel_in_order_and_stop_at_a_bad_one() {
    let key = DataKey::generate();
    let plain = pattern(9 * SEG + 77);
    let n = plain.len() as u64;
    let stored = seal(&key, &plain, 1 << 20);
    let block = sealed_block(2 * SEG as u64);
    for (start, len) in [
        (0, n),
        (SEG as u64 - 5, 3 * SEG as u64),
        (n - 10, 10),
        (5, 0),
    ] {
        let range = SealedRange::of(n, start, len);
        let (got, failed) = drain(open_blocks(
            key.cipher(),
            range,
            blocks_of(&stored, range, block),
        ))
        .await;
        assert!(failed.is_none(), "{start}+{len}: {failed:?}");
        assert_eq!(
            got,
            plain[start as usize..(start + len) as usize],
            "{start}+{len}"
        );
    }
    // A flipped bit in segment 5: every byte before its block comes, then the error.
    let mut tampered = stored.clone();
    tampered[5 * (SEG + TAG_BYTES) + 9] ^= 4;
    let range = SealedRange::of(n, 0, n);
    let (got, failed) = drain(open_blocks(
        key.cipher(),
        range,
        blocks_of(&tampered, range, block),
    ))
    .await;
    assert!(failed.unwrap().to_string().contains("segment 5"));
    assert_eq!(
        got,
        plain[..4 * SEG],
        "the blocks before the bad one, whole"
    );
    // Stored bytes that end early.
    let cut = &stored[..6 * (SEG + TAG_BYTES)];
    let (got, failed) = drain(open_blocks(
        key.cipher(),
        range,
        blocks_of(cut, range, block),
    ))
    .await;
    assert_eq!(failed.unwrap().kind(), io::ErrorKind::InvalidData);
    assert_eq!(got, plain[..6 * SEG]);
}
