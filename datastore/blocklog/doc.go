// Package blocklog is an append-only, segmented log datastore (Bitcask
// style) for small blocks: every write is an append to the active segment
// file, concurrent writers share one write(2) (and, with Sync, one fsync)
// per group commit, and an in-memory index maps each key to the segment,
// offset and length of its newest record.
//
// The model:
//
//   - The store is a directory of segment files 00000001.log, 00000002.log,
//     ... Only the newest (active) segment is appended to; when it passes
//     Options.SegmentSize it is fsynced and sealed, and a hint file (the
//     segment's keys and offsets without values) is written beside it so
//     that Open does not read sealed values. The committer notes the hint's
//     entries as it writes, so sealing does not read the segment back.
//   - A record is crc32c | kind | key length | value length | key | value.
//     Puts and Deletes (tombstones) are records; a Batch writes its records
//     as transaction records followed by one commit record, so after a crash
//     either all or none of a batch is visible.
//   - Group commit: Put, Delete and Batch.Commit encode their records into
//     the current group and wait; one committer goroutine writes the whole
//     group with one write call (then fsyncs once if Options.Sync) and
//     updates the index, then releases every waiter. A write returns only
//     once its group reached the kernel (and the disk, with Sync).
//   - Open scans the active segment, checking every checksum, and truncates
//     a torn or corrupt tail (and a batch without its commit record); sealed
//     segments are read through their hint files, or scanned in full when a
//     hint is missing or stale. A corrupt sealed segment is an error that
//     names the file and offset.
//   - Deletes and overwrites leave garbage. A background compactor rewrites
//     a sealed segment whose garbage passes Options.CompactRatio into a new
//     file that takes its place (write, fsync, rename), rate-limited, so a
//     crash at any point leaves either the old or the new file, each
//     holding every live record.
//
// The index costs a Go map slot (string header and a 12-byte entry) plus
// the key bytes per block; see IndexBytesPerBlock and docs/blocklog.md.
package blocklog
