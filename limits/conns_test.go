package limits

import "testing"

func TestConns(t *testing.T) {
	c := NewConns()
	r1, x := c.Acquire(ScopeProject, "p", 2)
	if x != nil {
		t.Fatal(x)
	}
	r2, _ := c.Acquire(ScopeProject, "p", 2)
	if _, x := c.Acquire(ScopeProject, "p", 2); x == nil || x.Limit != Connections || x.Used != 2 || x.Value != 2 {
		t.Fatalf("the third connection: %+v", x)
	}
	if _, x := c.Acquire(ScopeIP, "p", 2); x != nil {
		t.Error("another scope shares the count")
	}
	r1()
	r1() // twice is once
	if n := c.Open(ScopeProject, "p"); n != 1 {
		t.Errorf("%d open after a release, want 1", n)
	}
	if _, x := c.Acquire(ScopeProject, "p", 2); x != nil {
		t.Errorf("refused after a release: %v", x)
	}
	r2()
	if _, x := c.Acquire(ScopeProject, "q", 0); x != nil {
		t.Error("limit 0 refused")
	}
}
