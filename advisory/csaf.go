package advisory

import (
	"fmt"
	"strconv"
)

// CSAF 2.0 document members the node writes.
type (
	csafDoc struct {
		Document        csafDocument        `json:"document"`
		ProductTree     *csafProductTree    `json:"product_tree,omitempty"`
		Vulnerabilities []csafVulnerability `json:"vulnerabilities,omitempty"`
	}
	csafDocument struct {
		Category     string           `json:"category"`
		CSAFVersion  string           `json:"csaf_version"`
		Distribution csafDistribution `json:"distribution"`
		Lang         string           `json:"lang"`
		Notes        []csafNote       `json:"notes,omitempty"`
		Publisher    csafPublisher    `json:"publisher"`
		References   []csafReference  `json:"references,omitempty"`
		Title        string           `json:"title"`
		Tracking     csafTracking     `json:"tracking"`
	}
	csafDistribution struct {
		Text string  `json:"text,omitempty"`
		TLP  csafTLP `json:"tlp"`
	}
	csafTLP struct {
		Label string `json:"label"`
		URL   string `json:"url"`
	}
	csafNote struct {
		Category string `json:"category"`
		Text     string `json:"text"`
		Title    string `json:"title,omitempty"`
	}
	csafPublisher struct {
		Category  string `json:"category"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	csafReference struct {
		Category string `json:"category,omitempty"`
		Summary  string `json:"summary"`
		URL      string `json:"url"`
	}
	csafTracking struct {
		CurrentReleaseDate string         `json:"current_release_date"`
		Generator          *csafGenerator `json:"generator,omitempty"`
		ID                 string         `json:"id"`
		InitialReleaseDate string         `json:"initial_release_date"`
		RevisionHistory    []csafRevision `json:"revision_history"`
		Status             string         `json:"status"`
		Version            string         `json:"version"`
	}
	csafGenerator struct {
		Engine csafEngine `json:"engine"`
	}
	csafEngine struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	csafRevision struct {
		Date    string `json:"date"`
		Number  string `json:"number"`
		Summary string `json:"summary"`
	}
	csafProductTree struct {
		FullProductNames []csafProduct `json:"full_product_names"`
	}
	csafProduct struct {
		Name   string      `json:"name"`
		ID     string      `json:"product_id"`
		Helper *csafHelper `json:"product_identification_helper,omitempty"`
	}
	csafHelper struct {
		CPE  string `json:"cpe,omitempty"`
		PURL string `json:"purl,omitempty"`
	}
	csafVulnerability struct {
		CVE           string             `json:"cve,omitempty"`
		Flags         []csafFlag         `json:"flags,omitempty"`
		IDs           []csafID           `json:"ids,omitempty"`
		Involvements  []csafInvolvement  `json:"involvements,omitempty"`
		Notes         []csafNote         `json:"notes"`
		ProductStatus *csafProductStatus `json:"product_status,omitempty"`
		References    []csafReference    `json:"references,omitempty"`
		Remediations  []csafRemediation  `json:"remediations,omitempty"`
		Threats       []csafThreat       `json:"threats,omitempty"`
		Title         string             `json:"title,omitempty"`
	}
	csafID struct {
		SystemName string `json:"system_name"`
		Text       string `json:"text"`
	}
	csafFlag struct {
		Label      string   `json:"label"`
		ProductIDs []string `json:"product_ids"`
	}
	csafInvolvement struct {
		Party   string `json:"party"`
		Status  string `json:"status"`
		Summary string `json:"summary,omitempty"`
	}
	csafProductStatus struct {
		Fixed              []string `json:"fixed,omitempty"`
		KnownAffected      []string `json:"known_affected,omitempty"`
		KnownNotAffected   []string `json:"known_not_affected,omitempty"`
		UnderInvestigation []string `json:"under_investigation,omitempty"`
	}
	csafRemediation struct {
		Category   string   `json:"category"`
		Details    string   `json:"details"`
		ProductIDs []string `json:"product_ids"`
	}
	csafThreat struct {
		Category   string   `json:"category"`
		Details    string   `json:"details"`
		ProductIDs []string `json:"product_ids"`
	}
)

// CSAF returns the advisory as a CSAF 2.0 document: csaf_vex when the
// products' statuses say what a VEX must (a CVE id, an action for every
// affected product, an impact for every product not affected),
// csaf_security_advisory otherwise, csaf_base when no product is stated.
func CSAF(a *Advisory) ([]byte, error) {
	if len(a.Revisions) == 0 {
		return nil, fmt.Errorf("advisory %s: no revision", a.TrackingID)
	}
	cur := a.current()
	doc := csafDoc{Document: csafDocument{
		Category:     "csaf_security_advisory",
		CSAFVersion:  "2.0",
		Distribution: csafDistribution{TLP: csafTLP{Label: "WHITE", URL: "https://www.first.org/tlp/"}},
		Lang:         "en",
		Publisher:    csafPublisher{Category: a.Publisher.Category, Name: a.Publisher.Name, Namespace: a.Publisher.Namespace},
		Title:        a.Title,
		Tracking: csafTracking{
			CurrentReleaseDate: stamp(cur.Date),
			ID:                 a.TrackingID,
			InitialReleaseDate: stamp(a.Revisions[0].Date),
			Status:             "final",
			Version:            strconv.Itoa(cur.Number),
		},
	}}
	if a.Draft {
		doc.Document.Tracking.Status = "draft"
		doc.Document.Distribution = csafDistribution{Text: "A draft shared with the case's reviewers; not for distribution.",
			TLP: csafTLP{Label: "AMBER", URL: "https://www.first.org/tlp/"}}
	}
	if a.Generator != "" {
		doc.Document.Tracking.Generator = &csafGenerator{Engine: csafEngine{Name: a.Generator}}
	}
	for _, r := range a.Revisions {
		doc.Document.Tracking.RevisionHistory = append(doc.Document.Tracking.RevisionHistory,
			csafRevision{Date: stamp(r.Date), Number: strconv.Itoa(r.Number), Summary: r.Summary})
	}
	if s := Text(a.Summary); s != "" {
		doc.Document.Notes = append(doc.Document.Notes, csafNote{Category: "summary", Text: s, Title: "Summary"})
	}
	// A draft is served from nowhere yet: its reviewers would find
	// nothing at the URLs it will be published under.
	if a.CSAFURL != "" && !a.Draft {
		doc.Document.References = append(doc.Document.References, csafReference{Category: "self", Summary: "This document", URL: a.CSAFURL})
	}
	if a.URL != "" && !a.Draft {
		doc.Document.References = append(doc.Document.References, csafReference{Category: "external", Summary: "The advisory", URL: a.URL})
	}

	vuln := csafVulnerability{Title: a.Title}
	details := Text(a.Details)
	if details == "" {
		details = Text(a.Summary)
	}
	if details == "" {
		details = a.Title
	}
	vuln.Notes = []csafNote{{Category: "description", Text: details, Title: "Description"}}
	cve := a.CVE()
	vuln.CVE = cve
	for _, id := range a.IDs {
		if id != cve {
			vuln.IDs = append(vuln.IDs, csafID{SystemName: "alias", Text: id})
		}
	}
	if a.CaseID != "" {
		vuln.IDs = append(vuln.IDs, csafID{SystemName: "Vultron case", Text: a.CaseID})
	}
	if a.URL != "" {
		vuln.References = []csafReference{{Category: "external", Summary: "The advisory", URL: a.URL}}
	}
	vuln.Involvements = involvements(a.Involvements)

	vex := cve != "" && len(a.Products) > 0
	if len(a.Products) > 0 {
		tree := &csafProductTree{}
		ps := &csafProductStatus{}
		var fixedIDs []string
		for i, p := range a.Products {
			id := fmt.Sprintf("CSAFPID-%04d", i+1)
			fp := csafProduct{Name: productName(p), ID: id}
			// A CPE the schema does not take is left out: the product is
			// still named, and by its package URL.
			cpe := p.CPE
			if !IsCPE(cpe) {
				cpe = ""
			}
			if p.PURL != "" || cpe != "" {
				fp.Helper = &csafHelper{CPE: cpe, PURL: p.PURL}
			}
			tree.FullProductNames = append(tree.FullProductNames, fp)
			switch csafStatus(p.Status) {
			case "known_affected":
				ps.KnownAffected = append(ps.KnownAffected, id)
				category, text := "none_available", "No fix is available yet."
				if p.Statement != "" {
					category, text = "vendor_fix", Text(p.Statement)
				}
				vuln.Remediations = append(vuln.Remediations, csafRemediation{Category: category, Details: text, ProductIDs: []string{id}})
			case "fixed":
				ps.Fixed = append(ps.Fixed, id)
				fixedIDs = append(fixedIDs, id)
			case "known_not_affected":
				ps.KnownNotAffected = append(ps.KnownNotAffected, id)
				switch {
				case p.Justification != "":
					vuln.Flags = append(vuln.Flags, csafFlag{Label: p.Justification, ProductIDs: []string{id}})
				case p.Statement != "":
					vuln.Threats = append(vuln.Threats, csafThreat{Category: "impact", Details: Text(p.Statement), ProductIDs: []string{id}})
				default:
					vex = false
				}
			default:
				ps.UnderInvestigation = append(ps.UnderInvestigation, id)
			}
		}
		if len(fixedIDs) > 0 {
			vuln.Remediations = append(vuln.Remediations, csafRemediation{Category: "vendor_fix",
				Details: "These versions are fixed.", ProductIDs: fixedIDs})
		}
		doc.ProductTree = tree
		vuln.ProductStatus = ps
		if vex {
			doc.Document.Category = "csaf_vex"
		}
	} else {
		doc.Document.Category = "csaf_base"
	}
	doc.Vulnerabilities = []csafVulnerability{vuln}
	return Bytes(doc)
}

// involvements returns one involvement per CSAF party: the least advanced
// status among its participants, and each participant's states in words.
func involvements(in []Involvement) []csafInvolvement {
	var out []csafInvolvement
	index := map[string]int{}
	for _, i := range in {
		party, status := PartyOf(i.Roles), statusOf(i.State)
		k, ok := index[party]
		if !ok {
			index[party] = len(out)
			out = append(out, csafInvolvement{Party: party, Status: status, Summary: describe(i)})
			continue
		}
		if rank(status) < rank(out[k].Status) {
			out[k].Status = status
		}
		out[k].Summary += "; " + describe(i)
	}
	return out
}

func rank(status string) int {
	for i, s := range statusRank {
		if s == status {
			return i
		}
	}
	return len(statusRank)
}
