package handler

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/elara-gateway/elara/jsonrpc"
)

// batchConcurrency bounds how many calls of one HTTP batch run at once.
const batchConcurrency = 16

func (h *Handler) limits() jsonrpc.Limits {
	return jsonrpc.Limits{MaxBatch: h.MaxBatch, MaxDepth: maxDepth, MaxBatchName: "max_batch"}
}

// servePost answers JSON-RPC over HTTP POST: one call or a batch.
func (h *Handler) servePost(w http.ResponseWriter, r *http.Request, rt route) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxRequestSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			rt.stats.record(r.Context(), transportHTTP, "", outInvalid, 0)
			return writeError(w, http.StatusRequestEntityTooLarge, jsonrpc.NewError(jsonrpc.CodeInvalidRequest,
				"Request body is over the limit of "+strconv.FormatInt(h.MaxRequestSize, 10)+" bytes"))
		}
		return writeError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeParseError, "Could not read the request body"))
	}
	parsed, perr := jsonrpc.Parse(body, h.limits())
	if perr != nil {
		rt.stats.record(r.Context(), transportHTTP, "", outcomeOf(perr), 0)
		h.recordUnparsed(&rt, nil, perr, len(body))
		return writeError(w, http.StatusOK, perr)
	}
	answers := make([]answer, len(parsed.Calls))
	if len(parsed.Calls) == 1 {
		answers[0] = h.serve(r.Context(), rt, nil, parsed.Calls[0])
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, batchConcurrency)
		for i, c := range parsed.Calls {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				answers[i] = h.serve(r.Context(), rt, nil, c)
			}()
		}
		wg.Wait()
	}
	defer runAfter(answers)
	out := joinReplies(answers, parsed.Batch)
	if out == nil {
		// Only notifications: JSON-RPC says to send nothing back.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if status, retryAfter := refusalStatus(answers); status != 0 {
		return writeRefusal(w, status, retryAfter, out)
	}
	return writeReply(w, r, out)
}

// joinReplies builds the response body: the single reply, or an array of
// the batch's replies. It returns nil when there is nothing to send.
func joinReplies(answers []answer, batch bool) []byte {
	if !batch {
		return answers[0].reply
	}
	size, n := 2, 0
	for _, a := range answers {
		if a.reply != nil {
			size += len(a.reply) + 1
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for _, a := range answers {
		if a.reply == nil {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, a.reply...)
	}
	return append(out, ']')
}
