package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// keyLastBackup is the key, in the meta bucket, of the last backup sent:
// its time (Unix nanoseconds) and size, 8 bytes each.
var keyLastBackup = []byte("last_backup")

// BackupSent is a backup the node sent, as RecordBackupSent recorded it.
type BackupSent struct {
	At    time.Time
	Bytes int64
}

// RecordBackupSent records in tx that a backup of bytes bytes was sent
// whole at at, so that the time of the last one can be watched
// (LastBackupSent).
func (tx *Tx) RecordBackupSent(at time.Time, bytes int64) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	v = binary.BigEndian.AppendUint64(v, uint64(bytes))
	if err := tx.bucket(bucketMeta).Put(keyLastBackup, v); err != nil {
		return fmt.Errorf("store: record the backup sent: %w", err)
	}
	return nil
}

// LastBackupSent returns the last backup RecordBackupSent recorded, and
// false when none was.
func (r *ReadTx) LastBackupSent() (BackupSent, bool, error) {
	raw := r.bucket(bucketMeta).Get(keyLastBackup)
	switch len(raw) {
	case 0:
		return BackupSent{}, false, nil
	case 16:
		return BackupSent{
			At:    time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8]))).UTC(),
			Bytes: int64(binary.BigEndian.Uint64(raw[8:])),
		}, true, nil
	}
	return BackupSent{}, false, fmt.Errorf("store: last backup record: %d bytes, want 16: %w", len(raw), ErrSchema)
}
