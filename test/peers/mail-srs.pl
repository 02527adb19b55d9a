#!/usr/bin/perl
# Interop driver for Mail::SRS 0.31 (Debian libmail-srs-perl), the SRS reference implementation.
# Reads one JSON request per line on stdin and answers one JSON line per request, in order:
#   {"op":"forward","address":...,"alias":...,"secret":[...],"separator":"=","hashLength":4,
#    "hashMin":4,"now":<unix seconds>}            -> {"ok":true,"result":"..."}
#   {"op":"reverse","address":...,<same options>} -> {"ok":true,"result":"..."}
#   anything Mail::SRS dies on                     -> {"ok":false,"error":"..."}
use strict;
use warnings;

# Mail::SRS reads the clock with the builtin time() (timestamp_create, timestamp_check). Overriding
# CORE::GLOBAL::time before Mail::SRS is compiled makes every one of those calls return the
# request's clock, so a test can pin the day stamp.
our $NOW;
BEGIN { *CORE::GLOBAL::time = sub () { $main::NOW } }

use JSON::PP;
use Mail::SRS;

# Addresses are raw UTF-8 bytes end to end. Mail::SRS hashes lc() of its fields; on a byte string
# (no UTF8 flag, no `unicode_strings` feature) lc only folds A-Z, which is the ASCII-only
# lowercasing the other peers and SPEC §5 use. JSON::PP's utf8(0) on the undecoded line keeps one
# character per byte but may set the UTF8 flag, under which lc would also fold the Latin-1
# letters that UTF-8 lead bytes look like (C3 -> E3): `Üser@Bücher.DE` would hash to Etu8, not
# LWpK. as_bytes() downgrades every string before Mail::SRS sees it.
binmode STDIN, ':raw';
binmode STDOUT, ':raw';
$| = 1;
my $json = JSON::PP->new->utf8(0)->canonical(1);

my %srs_by_options;

sub as_bytes {
    my ($value) = @_;
    utf8::downgrade($value, 1) or die "not a byte string: $value\n";
    return $value;
}

sub srs_for {
    my ($req) = @_;
    my $key = $json->encode([ @$req{qw(secret separator hashLength hashMin)} ]);
    return $srs_by_options{$key} //= Mail::SRS->new(
        Secret     => [ map { as_bytes($_) } @{ $req->{secret} } ],
        Separator  => $req->{separator},
        HashLength => $req->{hashLength},
        HashMin    => $req->{hashMin},
        MaxAge     => 21,
    );
}

sub answer {
    my ($req) = @_;
    $main::NOW = $req->{now};
    my $srs = srs_for($req);
    my $address = as_bytes($req->{address});
    return $srs->forward($address, as_bytes($req->{alias})) if $req->{op} eq 'forward';
    return $srs->reverse($address) if $req->{op} eq 'reverse';
    die "unknown op $req->{op}\n";
}

while (my $line = <STDIN>) {
    my $reply = eval { +{ ok => JSON::PP::true, result => answer($json->decode($line)) } };
    unless ($reply) {
        my $error = $@;
        $error =~ s/\s+\z//;
        $reply = { ok => JSON::PP::false, error => $error };
    }
    print $json->encode($reply), "\n";
}
