package projects

import (
	"encoding/json"
	"fmt"
)

// stored is how a project is written to a backing store: its JSON with
// the secret, which Secret's own JSON form already carries.
func marshalProject(p *Project) ([]byte, error) {
	return json.Marshal(p)
}

func unmarshalProject(data []byte) (*Project, error) {
	var p Project
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decoding a stored project: %w", err)
	}
	return &p, nil
}
