package handler

// PeakQueuedBytes returns the most bytes one client's send queue has held
// since the last ResetPeakQueuedBytes.
func PeakQueuedBytes() int64 { return peakQueued.Load() }

// ResetPeakQueuedBytes starts a new measurement.
func ResetPeakQueuedBytes() { peakQueued.Store(0) }
