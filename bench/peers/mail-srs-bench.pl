#!/usr/bin/perl
# Mail::SRS forward+reverse throughput, timed inside Perl. Speaks the protocol described
# in bench/lib/peers.mjs: round-trip check, {"ready":true}, then one timed round per
# stdin line "<seconds>" (of CPU time), answered with {"opsPerSec":N}.
# Usage: mail-srs-bench.pl ADDRESS_FILE
use strict;
use warnings;
use Mail::SRS;
use Time::HiRes qw(clock_gettime CLOCK_PROCESS_CPUTIME_ID);
use JSON::PP;

$| = 1;    # each answer must reach Node as soon as it is printed
my ($file) = @ARGV;
open(my $fh, '<', $file) or die "cannot read $file: $!\n";
chomp(my @addresses = <$fh>);
close($fh);

my $srs = Mail::SRS->new(Secret => 'tops3cr3t');

# A harness that silently fails to round-trip must not report a fantastic number.
for my $address (@addresses) {
	my $back = $srs->reverse($srs->forward($address, 'example.com'));
	die "round trip failed: $address -> $back\n" unless $back eq $address;
}
print encode_json({ ready => JSON::PP::true }), "\n";

# Whole passes over the list until the budget of CPU time is used, like bench/srs.mjs: CPU time
# of this process, so that time other processes have the CPU is not counted.
sub cpu { clock_gettime(CLOCK_PROCESS_CPUTIME_ID) }
while (my $seconds = <STDIN>) {
	my ($ops, $start, $elapsed) = (0, cpu(), 0);
	do {
		$srs->reverse($srs->forward($_, 'example.com')) for @addresses;
		$ops += @addresses;
		$elapsed = cpu() - $start;
	} while ($elapsed < $seconds);
	print encode_json({ opsPerSec => $ops / $elapsed }), "\n";
}
