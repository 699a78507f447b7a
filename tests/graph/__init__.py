"""Static model analysis: parameters, FLOPs, memory and device roofline."""
