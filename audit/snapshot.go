package audit

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Snapshot is what an audit stores for the next one to compare with.
type Snapshot struct {
	TakenAt time.Time `json:"takenAt"`
	// Subjects are "ACCOUNT/SUBJECT-ID" of every subject seen at AWS, by
	// the account's configured name (known even when the account cannot
	// be read).
	Subjects []string `json:"subjects"`
	Certs    int      `json:"certs"`
}

// NextSnapshot returns what to store for the next audit.
func (r *Report) NextSnapshot() *Snapshot { return r.snapshot }

// EncodeSnapshot and DecodeSnapshot are the snapshot's stored form.
func EncodeSnapshot(s *Snapshot) ([]byte, error) { return json.Marshal(s) }

func DecodeSnapshot(data []byte) (*Snapshot, error) {
	s := new(Snapshot)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("audit snapshot: %w", err)
	}
	return s, nil
}

func subjectKey(account, subjectID string) string { return account + "/" + subjectID }

func newSnapshot(w *World) *Snapshot {
	s := &Snapshot{TakenAt: w.Now, Certs: len(w.Certs), Subjects: []string{}}
	// An account that failed this time, or whose subjects were not read,
	// keeps its previous subjects known, so they are not all "new" once
	// they are read again.
	failed := map[string]bool{}
	for _, a := range w.Accounts {
		if a.Err != nil || !a.SubjectsRead {
			failed[a.Name] = true
			continue
		}
		for _, su := range a.Subjects {
			s.Subjects = append(s.Subjects, subjectKey(a.Name, su.ID))
		}
	}
	if w.Previous != nil {
		for _, k := range w.Previous.Subjects {
			for id := range failed {
				if len(k) > len(id) && k[:len(id)+1] == id+"/" {
					s.Subjects = append(s.Subjects, k)
				}
			}
		}
	}
	sort.Strings(s.Subjects)
	return s
}
