package app

// SharesState reports whether x and y count and look up projects in the
// same state (store, counters, connection slots): a connection admitted
// under y stays accounted for under x across a reload.
func (x *Access) SharesState(y *Access) bool {
	return x != nil && y != nil && x.shared == y.shared
}
