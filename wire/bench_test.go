package wire

import "testing"

var (
	benchV2Text   = []byte(`["2","8","campaign:x","new_donation",{"amount":100,"donor":"Ann"}]`)
	benchV2Binary = []byte("\x00\x01\x02\x0a\x04" + "220campaign:xping" + "\xde\xad\xbe\xef\x00\x01")
	benchV1       = []byte(`{"topic":"campaign:v","event":"new_donation","payload":{"amount":7,"donor":"Vic"},"ref":"6","join_ref":"2"}`)
	benchPayload  = []byte(`{"amount":100,"donor":"Ann","timestamp":"2026-11-27T19:25:43.725086Z"}`)
	benchBinary   = []byte("\xde\xad\xbe\xef\x00\x01")
)

func benchDecode(b *testing.B, s Serializer, data []byte, binary bool) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.Decode(data, binary); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	b.Run("V2Text", func(b *testing.B) { benchDecode(b, V2, benchV2Text, false) })
	b.Run("V2Binary", func(b *testing.B) { benchDecode(b, V2, benchV2Binary, true) })
	b.Run("V1", func(b *testing.B) { benchDecode(b, V1, benchV1, false) })
}

func benchEncode(b *testing.B, enc func(dst []byte) (Frame, error)) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for b.Loop() {
		f, err := enc(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		buf = f.Data
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range []struct {
		name    string
		s       Serializer
		payload []byte
		binary  bool
	}{
		{"V2Text", V2, benchPayload, false},
		{"V2Binary", V2, benchBinary, true},
		{"V1", V1, benchPayload, false},
	} {
		b.Run(c.name+"/Push", func(b *testing.B) {
			benchEncode(b, func(dst []byte) (Frame, error) {
				return c.s.AppendPush(dst, `"2"`, "campaign:x", "campaign_data", c.payload, c.binary)
			})
		})
		b.Run(c.name+"/Reply", func(b *testing.B) {
			benchEncode(b, func(dst []byte) (Frame, error) {
				return c.s.AppendReply(dst, `"2"`, `"8"`, "campaign:x", "ok", c.payload, c.binary)
			})
		})
		b.Run(c.name+"/Broadcast", func(b *testing.B) {
			benchEncode(b, func(dst []byte) (Frame, error) {
				return c.s.AppendBroadcast(dst, "campaign:x", "donation_received", c.payload, c.binary)
			})
		})
	}
}

func BenchmarkNegotiate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Negotiate("2.0.0"); err != nil {
			b.Fatal(err)
		}
	}
}
