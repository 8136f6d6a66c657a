#!/usr/bin/perl
# An independent DKIM verifier for the tests: Debian's Mail::DKIM (libmail-dkim-perl), asking
# the test's own DNS server on loopback. Reads a message on stdin; prints one line per
# signature, "<result> d=<domain> s=<selector> a=<algorithm> <detail>", then "overall <result>".
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS::Resolver;

my ($host, $port) = @ARGV;
my $resolver = Net::DNS::Resolver->new(nameservers => [$host], port => $port, recurse => 1,
                                       tcp_timeout => 5, udp_timeout => 5, retry => 1);
Mail::DKIM::DNS::resolver($resolver);
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (<STDIN>) {
    s/\015?\012$/\015\012/;
    $dkim->PRINT($_);
}
$dkim->CLOSE;
foreach my $signature ($dkim->signatures) {
    printf "%s d=%s s=%s a=%s %s\n", $signature->result, $signature->domain, $signature->selector,
        $signature->algorithm, $signature->result_detail;
}
printf "overall %s\n", $dkim->result;
