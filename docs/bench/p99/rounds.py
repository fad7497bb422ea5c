# rounds.py OUT: classes the rounds of rounds.sh by the flushes and compactions they overlap (from OUT/files.txt) and prints p99 and max per class
import sys, statistics as st, collections
d=sys.argv[1]
rounds=[]
for l in open(d+'/rounds.txt'):
    p=l.split(None,3); f=p[3].strip().replace('"','').split(',')
    rounds.append((int(p[0]),float(p[1]),float(p[2]),float(f[6]),float(f[7]),float(f[1])))
ev=collections.defaultdict(list)
first=None
lines=[l.split() for l in open(d+'/files.txt')]
t_start=float(lines[0][0])
for t,f in lines:
    t=float(t)
    if t-t_start<0.2: continue   # pre-existing
    node,name=f.split('/'); node={'n0':'n1','n1':'n2','n2':'n3'}[node]
    ev[node].append((t,name))
# flush windows: .mem creation (rotation) -> next .sst (L0 table written)
wins=[]
for node,es in ev.items():
    es.sort()
    mems=[t for t,n in es if n.endswith('.mem')]
    ssts=[t for t,n in es if n.endswith('.sst')]
    for m in mems:
        after=[s for s in ssts if s>m]
        if after and after[0]-m<2: wins.append((node,m,after[0],'flush'))
    # compaction: >=2 sst within 1 s
    for i,s in enumerate(ssts):
        if sum(1 for x in ssts if abs(x-s)<1.0)>=3: wins.append((node,s-0.5,s,'compact'))
print("flush windows (node, start offset s, length ms):", sorted((n, round(a-t_start,2), round((b-a)*1000)) for n,a,b,k in wins if k=='flush'))
cls=collections.defaultdict(list)
for r,t0,t1,p99,mx,rps in rounds:
    hit=set(); kinds=set()
    for node,a,b,k in wins:
        if a<t1 and b+0.05>t0: hit.add(node); kinds.add(k)
    if 'compact' in kinds: c='compaction'
    elif not hit: c='no flush'
    elif hit=={'n1'}: c='n1 flush only'
    elif 'n1' not in hit and len(hit)==1: c='one replica flushing'
    elif 'n1' not in hit: c='both replicas flushing'
    else: c='n1 + replica(s) flushing'
    cls[c].append((p99,mx,rps))
    print(f"round {r:2d} +{t0-t_start:6.2f}s p99 {p99:7.3f} max {mx:8.3f} {rps:8.0f}/s  {c} {sorted(hit)}")
print()
for c,v in sorted(cls.items()):
    print(f"{c:28s} rounds {len(v):2d}  p99 median {st.median(x[0] for x in v):6.2f} ms  max median {st.median(x[1] for x in v):7.2f} ms  ops/s median {st.median(x[2] for x in v):7.0f}")
