# gnuplot script of perf/bench_cluster.sh: throughput and p50 latency against outstanding
# requests, one line per setup. Variables: datafile, outfile (.svg or .png).
if (outfile[strlen(outfile)-3:] eq '.png') {
    set terminal pngcairo size 1100,450 font ',10'
} else {
    set terminal svg size 1100,450 dynamic font 'sans,11'
}
set output outfile
set termoption noenhanced
stats datafile using 1 nooutput
nblocks = STATS_blocks
set multiplot layout 1,2 title 'Ordo, 3 replicas on veth (perf/bench_cluster.sh)'
set logscale x 2
set xlabel 'outstanding requests'
set grid
set key top left font ',9'
set ylabel 'writes/s'
set logscale y
plot for [i=0:nblocks-1] datafile index i using 1:2 with linespoints title columnheader(1)
set ylabel 'p50 latency (us)'
set key top left
plot for [i=0:nblocks-1] datafile index i using 1:3 with linespoints title columnheader(1), \
     datafile index 0 using 1:5 with lines dashtype 2 lc rgb 'black' title 'floor (2 fsyncs + RTT)'
unset multiplot
