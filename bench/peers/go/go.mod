module rotorbench/peers

go 1.19
