package media

// isVP8Keyframe reports whether an RTP payload starts a VP8 keyframe
// (RFC 7741: the payload descriptor, then the VP8 frame tag whose lowest
// bit is 0 for a key frame). A simulcast layer switch waits for one, since
// a decoder cannot continue a stream from another layer's delta frames.
// Hand-written rather than codecs.VP8Packet.Unmarshal: this runs on every
// forwarded video packet and must not allocate.
func isVP8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	start := b0&0x10 != 0 // S: start of a partition
	pid := b0 & 0x07      // partition index
	if !start || pid != 0 {
		return false
	}
	i := 1
	if b0&0x80 != 0 { // X: extension byte follows
		if len(p) <= i {
			return false
		}
		x := p[i]
		i++
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0
}
