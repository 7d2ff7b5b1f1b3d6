package main

import (
	"strings"
	"unicode/utf8"
)

// column of a Markdown table; numbers are right-aligned.
type column struct {
	name  string
	right bool
}

// table is a Markdown table, rendered with padded columns so that it
// reads well as plain text too.
type table struct {
	cols []column
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t table) markdown() string {
	width := make([]int, len(t.cols))
	for i, c := range t.cols {
		width[i] = max(utf8.RuneCountInString(c.name), 3)
	}
	for _, r := range t.rows {
		for i := range t.cols {
			if i < len(r) {
				width[i] = max(width[i], utf8.RuneCountInString(r[i]))
			}
		}
	}
	var b strings.Builder
	line := func(cell func(i int) string) {
		b.WriteString("|")
		for i := range t.cols {
			b.WriteString(" " + cell(i) + " |")
		}
		b.WriteString("\n")
	}
	line(func(i int) string { return pad(t.cols[i].name, width[i], t.cols[i].right) })
	line(func(i int) string {
		if t.cols[i].right {
			return strings.Repeat("-", width[i]-1) + ":"
		}
		return strings.Repeat("-", width[i])
	})
	for _, r := range t.rows {
		line(func(i int) string {
			cell := ""
			if i < len(r) {
				cell = r[i]
			}
			return pad(cell, width[i], t.cols[i].right)
		})
	}
	return b.String()
}

func pad(s string, w int, right bool) string {
	fill := strings.Repeat(" ", max(w-utf8.RuneCountInString(s), 0))
	if right {
		return fill + s
	}
	return s + fill
}
