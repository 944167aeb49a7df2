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
	// Subjects are "ACCOUNT-ID/SUBJECT-ID" of every subject seen at AWS.
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

func subjectKey(accountID, subjectID string) string { return accountID + "/" + subjectID }

func newSnapshot(w *World) *Snapshot {
	s := &Snapshot{TakenAt: w.Now, Certs: len(w.Certs), Subjects: []string{}}
	for _, a := range w.Accounts {
		if a.Err != nil {
			continue
		}
		for _, su := range a.Subjects {
			s.Subjects = append(s.Subjects, subjectKey(a.ID, su.ID))
		}
	}
	if w.Previous != nil {
		// An account that failed this time keeps its subjects known, so
		// they are not all "new" once it answers again.
		failed := map[string]bool{}
		for _, a := range w.Accounts {
			if a.Err != nil && a.ID != "" {
				failed[a.ID] = true
			}
		}
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
