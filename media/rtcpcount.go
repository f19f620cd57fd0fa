package media

import (
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// rtcpCounters counts the feedback that shows whether loss recovery and
// keyframe requests work: NACKs and PLIs in each direction. Sent packets
// are counted by an interceptor registered first, so it sits next to the
// wire and sees what the NACK generator writes as well as what our own
// code writes. Received ones are counted by each downTrack's RTCP reader,
// which knows its SSRC: pion hands a compound RTCP packet to every stream
// it mentions, so counting in an interceptor would count one NACK several
// times.
type rtcpCounters struct {
	nackSent, nackReceived atomic.Uint64 // NACK packets to publishers / from subscribers
	pliSent, pliReceived   atomic.Uint64 // PLI and FIR
}

func (c *rtcpCounters) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &rtcpCountInterceptor{c: c}, nil
}

func (c *rtcpCounters) countSent(pkts []rtcp.Packet) {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.TransportLayerNack:
			c.nackSent.Add(1)
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			c.pliSent.Add(1)
		}
	}
}

type rtcpCountInterceptor struct {
	interceptor.NoOp
	c *rtcpCounters
}

func (i *rtcpCountInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attr interceptor.Attributes) (int, error) {
		i.c.countSent(pkts)
		return w.Write(pkts, attr)
	})
}
