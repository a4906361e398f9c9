import os,sys,time,statistics
a,b,n=sys.argv[1],sys.argv[2],int(sys.argv[3])
ta=[];tb=[]
for i in range(n):
    for p,t in ((a,ta),(b,tb)) if i%2==0 else ((b,tb),(a,ta)):
        s=time.perf_counter_ns(); pid=os.posix_spawn(p,[p],{}); os.waitpid(pid,0); t.append(time.perf_counter_ns()-s)
ma,mb=statistics.median(ta)/1000,statistics.median(tb)/1000
print(f"{os.path.basename(a)} {ma:.0f} us, {os.path.basename(b)} {mb:.0f} us, ratio {mb/ma:.2f}, +{mb-ma:.0f} us")
