package notify_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"gatehouse/authz/notify"
)

// A receiver of FormatJSON deliveries verifies the signature over the raw body before parsing it.
func ExampleVerify() {
	secret := []byte("shared-secret") // the webhook's secret in gatehouse's config
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		err = notify.Verify(secret, r.Header.Get(notify.HeaderTimestamp), body,
			r.Header.Get(notify.HeaderSignature), time.Now(), notify.DefaultMaxSkew)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Println("verified", r.Header.Get(notify.HeaderEvent), "delivery")
		w.WriteHeader(http.StatusNoContent)
	})

	// What gatehouse sends, signed now:
	body := []byte(`{"event":"live","path":"live/alice"}`)
	ts := time.Now().Unix()
	for _, b := range [][]byte{body, []byte(`{"event":"live","path":"live/mallory"}`)} {
		req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(b))
		req.Header.Set(notify.HeaderEvent, "live")
		req.Header.Set(notify.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(notify.HeaderSignature, notify.Sign(secret, ts, body))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// verified live delivery
	// 204
	// 401
}
