// kstatus prints the verdict of sigs.k8s.io/cli-utils/pkg/kstatus (the status
// library Flux, kpt and kapply use) for each Kubernetes object read as JSON on
// stdin: single objects, a List (kubectl get -o json), or a stream of them.
// One JSON line per object: {"kind","namespace","name","status","message"}.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

// emit prints the verdict of one object, or of each item of a List.
func emit(enc *json.Encoder, obj runtime.Object) error {
	if list, ok := obj.(*unstructured.UnstructuredList); ok {
		return list.EachListItem(func(item runtime.Object) error { return emit(enc, item) })
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("not an object: %T", obj)
	}
	res, err := status.Compute(u)
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return enc.Encode(verdict{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Status: res.Status.String(), Message: res.Message})
}

func main() {
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return
		}
		if err == nil {
			// The unstructured decoder keeps integers int64, as kstatus reads generations.
			var obj runtime.Object
			if obj, err = runtime.Decode(unstructured.UnstructuredJSONScheme, raw); err == nil {
				err = emit(enc, obj)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(1)
		}
	}
}
