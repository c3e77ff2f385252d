<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{{framework}} · framework-lab</title></head>
<body>
<h1>{{framework}} {{framework_version}}</h1>
<p>Served by {{server}}, behind nginx, with PostgreSQL.</p>
<ul>
% for endpoint in endpoints:
<li><a href="{{url(endpoint)}}">{{url(endpoint)}}</a></li>
% end
</ul>
</body>
</html>
