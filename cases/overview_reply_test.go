package cases

import "testing"

// TestDescribeReply: a reply is told by what it answers in words, with
// both messages; a status, whose classification names every message its
// letters may be, without the answered one; a record kept before the
// answered message was, by the answered activity's type.
func TestDescribeReply(t *testing.T) {
	tests := []struct {
		name string
		rec  ReplyRecord
		want string
	}{
		{"engagement", ReplyRecord{To: "vendor", Semantic: "ACK_REPORT", Messages: "RK", AnswersType: "Join",
			AnswersSemantic: "ENGAGE_CASE", AnswersMessages: "RA"}, "acknowledged vendor's engagement in the case (RK, answering RA)"},
		{"refused note", ReplyRecord{To: "finder", Semantic: "GENERAL_ERROR", Messages: "GE", AnswersType: "Add", Reason: "not a participant",
			AnswersSemantic: "ADD_NOTE_TO_CASE", AnswersMessages: "GI"}, "refused finder's note (GE, answering GI)"},
		{"status", ReplyRecord{To: "vendor", Semantic: "ACK_CASE_STATUS", Messages: "CK", AnswersType: "Add",
			AnswersSemantic: "ADD_PARTICIPANT_STATUS_TO_PARTICIPANT", AnswersMessages: "CV|CF|CD|CP|CX|CA"}, "acknowledged vendor's status report (CK)"},
		{"older record", ReplyRecord{To: "vendor", Semantic: "ACK_REPORT", Messages: "RK", AnswersType: "TentativeReject"},
			"acknowledged vendor's TentativeReject (RK)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeReply(tt.rec).Summary; got != tt.want {
				t.Errorf("describeReply = %q, want %q", got, tt.want)
			}
		})
	}
}
