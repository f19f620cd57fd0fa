package store

import "github.com/tacklegate/tacklegate/rental"

// ResealEvidence seals content as the store would for an order's item seq,
// so a test can play an attacker who holds the data key and swaps a photo.
func (db *DB) ResealEvidence(content []byte, order rental.OrderID, seq int) []byte {
	return db.sealer.seal(content, evidenceAD(order, seq))
}
