package jobs

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Country values besides ISO 3166 codes.
const (
	CountryUnknown = "unknown" // no database, or an address it does not know
	CountryLocal   = "local"   // loopback, private, link-local, unique local
)

// Geo finds a client address's country in a MaxMind-format .mmdb
// database: MaxMind's GeoIP2/GeoLite2 Country ({"country":{"iso_code"}})
// or the ip-location-db country databases ({"country_code"}).
type Geo struct {
	db *maxminddb.Reader
}

// OpenGeo opens the database at path.
func OpenGeo(path string) (*Geo, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("country database %s: %w", path, err)
	}
	return &Geo{db: db}, nil
}

// Close releases the database.
func (g *Geo) Close() error {
	if g == nil || g.db == nil {
		return nil
	}
	return g.db.Close()
}

type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	CountryCode string `maxminddb:"country_code"`
}

// Country is the ISO 3166 code of ip ("1.2.3.4", "2001:db8::1", with or
// without a port), CountryLocal for loopback and private addresses,
// CountryUnknown otherwise. g may be nil: no database.
func (g *Geo) Country(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		ap, perr := netip.ParseAddrPort(ip)
		if perr != nil {
			return CountryUnknown
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap().WithZone("")
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsUnspecified() {
		return CountryLocal
	}
	if g == nil || g.db == nil {
		return CountryUnknown
	}
	var rec geoRecord
	res := g.db.Lookup(addr)
	if !res.Found() || res.Decode(&rec) != nil {
		return CountryUnknown
	}
	code := rec.Country.ISOCode
	if code == "" {
		code = rec.CountryCode
	}
	if len(code) != 2 {
		return CountryUnknown
	}
	return strings.ToUpper(code)
}
