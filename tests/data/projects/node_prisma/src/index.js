const express = require('express');
const helmet = require('helmet');
const { PrismaClient } = require('@prisma/client');

const prisma = new PrismaClient();
const app = express();
app.use(helmet());
app.use(express.json());

app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
app.get('/api/posts', async (req, res) => {
  const take = Math.min(Number(req.query.limit ?? 20), 100);
  res.json(await prisma.post.findMany({ where: { published: true }, take }));
});

app.listen(Number(process.env.PORT ?? 3000));
